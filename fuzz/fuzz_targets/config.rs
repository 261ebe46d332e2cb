//! The config checker takes operator input: any text must give problems,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let (config, problems) = switchyard::config::check_str(text);
        // Either a config or at least one error, never both missing.
        assert!(config.is_some() || !problems.is_empty());
    }
});
