//! A DNS server on loopback for the discovery tests: answers A, AAAA and
//! SRV questions from a table the test changes while it runs (UDP only;
//! answers are small). Messages are read and written with hickory-proto,
//! the codec of the resolver switchyard uses.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};

#[derive(Clone, Debug)]
pub enum Answer {
    Ip(IpAddr),
    /// priority, weight, port, target
    Srv(u16, u16, u16, String),
}

pub struct DnsServer {
    pub addr: SocketAddr,
    table: Arc<Mutex<HashMap<String, Vec<Answer>>>>,
    stop: Arc<AtomicBool>,
    /// Questions answered so far.
    pub questions: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DnsServer {
    pub fn start() -> DnsServer {
        let port = super::free_port();
        let socket = UdpSocket::bind(("127.0.0.1", port)).expect("bind DNS server");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let table: Arc<Mutex<HashMap<String, Vec<Answer>>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let questions = Arc::new(AtomicU64::new(0));
        let thread = {
            let (table, stop, questions) = (table.clone(), stop.clone(), questions.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 1500];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = socket.recv_from(&mut buf) else {
                        continue;
                    };
                    let Ok(query) = Message::from_vec(&buf[..n]) else {
                        continue;
                    };
                    questions.fetch_add(1, Ordering::Relaxed);
                    let reply = answer(&query, &table.lock().unwrap());
                    if let Ok(bytes) = reply.to_vec() {
                        let _ = socket.send_to(&bytes, from);
                    }
                }
            })
        };
        DnsServer {
            addr,
            table,
            stop,
            questions,
            thread: Some(thread),
        }
    }

    /// Replaces the answers for `name` (no trailing dot).
    pub fn set(&self, name: &str, answers: Vec<Answer>) {
        self.table
            .lock()
            .unwrap()
            .insert(format!("{}.", name.to_ascii_lowercase()), answers);
    }

    /// Stops answering (the socket closes: questions go unanswered).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn answer(query: &Message, table: &HashMap<String, Vec<Answer>>) -> Message {
    let mut reply = Message::response(query.metadata.id, OpCode::Query);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.authoritative = true;
    let Some(q) = query.queries.first() else {
        reply.metadata.response_code = ResponseCode::FormErr;
        return reply;
    };
    reply.add_query(q.clone());
    let name = q.name().to_ascii().to_ascii_lowercase();
    let Some(answers) = table.get(&name) else {
        reply.metadata.response_code = ResponseCode::NXDomain;
        return reply;
    };
    for a in answers {
        let data = match (a, q.query_type()) {
            (Answer::Ip(IpAddr::V4(ip)), RecordType::A) => RData::A(A(*ip)),
            (Answer::Ip(IpAddr::V6(ip)), RecordType::AAAA) => RData::AAAA(AAAA(*ip)),
            (Answer::Srv(prio, weight, port, target), RecordType::SRV) => {
                let Ok(target) = Name::from_ascii(format!("{target}.")) else {
                    continue;
                };
                RData::SRV(SRV::new(*prio, *weight, *port, target))
            }
            _ => continue,
        };
        reply.add_answer(Record::from_rdata(q.name().clone(), 0, data));
    }
    reply
}
