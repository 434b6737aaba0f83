//! The client's retries, against a scripted node on loopback: a GET (which changes
//! nothing) is sent again while the node answers that its enclave is restarting (503),
//! with a fresh signature for the restarted enclave's epoch when it is signed; a POST,
//! which may have taken effect, is not; and the retries stop after a few seconds.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use veritee_channel::client::TenantKey;
use veritee_client::{ClientError, IDEMPOTENT_RETRY_WAITS, NodeClient};

const UNAVAILABLE: &str = r#"{"error":{"code":"unavailable","message":"enclave connection lost: Broken pipe (the enclave is being restarted; retry)"}}"#;

/// A node answering each request `script` says for its path (in turn; the last answer
/// repeats), recording the request lines it saw.
fn scripted_node(
    script: Vec<(&'static str, Vec<(u16, String)>)>,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        let mut script = script;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut content_length = 0usize;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).is_err() || header == "\r\n" || header.is_empty() {
                    break;
                }
                if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                    content_length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; content_length];
            let _ = std::io::Read::read_exact(&mut reader, &mut body);
            let request = line.trim().to_string();
            log.lock().expect("lock").push(request.clone());
            let path = request.split(' ').nth(1).unwrap_or_default().to_string();
            let (status, body) = script
                .iter_mut()
                .find(|(p, _)| path.starts_with(p))
                .map(|(_, answers)| {
                    if answers.len() > 1 {
                        answers.remove(0)
                    } else {
                        answers[0].clone()
                    }
                })
                .unwrap_or((
                    404,
                    r#"{"error":{"code":"not_found","message":"?"}}"#.into(),
                ));
            let reason = if status == 200 { "OK" } else { "Error" };
            let _ = write!(
                stream,
                "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\nretry-after: 1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, seen)
}

fn node_info() -> (u16, String) {
    (
        200,
        format!(
            r#"{{"node_id":"0011223344556677","epoch":"{}"}}"#,
            "ab".repeat(16)
        ),
    )
}

fn count(seen: &Mutex<Vec<String>>, line: &str) -> usize {
    seen.lock()
        .expect("lock")
        .iter()
        .filter(|l| l.starts_with(line))
        .count()
}

#[test]
fn a_get_is_sent_again_while_the_enclave_restarts() {
    let (url, seen) = scripted_node(vec![
        ("/v1/node", vec![node_info()]),
        (
            "/v1/tasks",
            vec![
                (503, UNAVAILABLE.into()),
                (503, UNAVAILABLE.into()),
                (200, r#"{"tasks":[]}"#.into()),
            ],
        ),
    ]);
    let tenant = TenantKey::generate().expect("tenant");
    let client = NodeClient::new(&url).expect("client");
    let tasks = client
        .list_tasks(&tenant)
        .expect("answered on the third attempt");
    assert!(tasks.is_empty());
    assert_eq!(count(&seen, "GET /v1/tasks"), 3);
    // The audience (node and epoch) is fetched again after each 503: a restarted
    // enclave has a new epoch, and a signature for the old one would be refused.
    assert_eq!(count(&seen, "GET /v1/node"), 3);
}

#[test]
fn a_post_is_not_sent_again_and_the_refusal_says_why() {
    let (url, seen) = scripted_node(vec![
        ("/v1/node", vec![node_info()]),
        ("/v1/tasks", vec![(503, UNAVAILABLE.into())]),
    ]);
    let tenant = TenantKey::generate().expect("tenant");
    let client = NodeClient::new(&url).expect("client");
    let err = client
        .cancel_task(&tenant, &"ab".repeat(16))
        .expect_err("503");
    match &err {
        ClientError::Node {
            status: 503,
            message,
            ..
        } => assert!(message.contains("being restarted"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(count(&seen, "POST /v1/tasks"), 1, "sent once");
}

#[test]
fn retries_end_after_a_few_seconds() {
    let (url, seen) = scripted_node(vec![
        ("/v1/node", vec![node_info()]),
        ("/v1/tasks", vec![(503, UNAVAILABLE.into())]),
    ]);
    let tenant = TenantKey::generate().expect("tenant");
    let client = NodeClient::new(&url).expect("client");
    let started = std::time::Instant::now();
    let err = client.list_tasks(&tenant).expect_err("never available");
    assert!(
        matches!(err, ClientError::Node { status: 503, .. }),
        "{err:?}"
    );
    assert_eq!(
        count(&seen, "GET /v1/tasks"),
        IDEMPOTENT_RETRY_WAITS.len() + 1
    );
    let waited: std::time::Duration = IDEMPOTENT_RETRY_WAITS.iter().sum();
    assert!(started.elapsed() >= waited);
    assert!(waited <= std::time::Duration::from_secs(5));
}

#[test]
fn an_unsigned_get_is_sent_again_too() {
    let (url, seen) = scripted_node(vec![(
        "/v1/audit/checkpoint",
        vec![
            (503, UNAVAILABLE.into()),
            (200, "node.example/log\n1\nAAAA\n".into()),
        ],
    )]);
    let client = NodeClient::new(&url).expect("client");
    let checkpoint = client
        .audit_checkpoint()
        .expect("answered on the second attempt");
    assert_eq!(checkpoint, "node.example/log\n1\nAAAA\n");
    assert_eq!(count(&seen, "GET /v1/audit/checkpoint"), 2);
}
