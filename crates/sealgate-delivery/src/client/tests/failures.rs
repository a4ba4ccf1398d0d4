//! Refusals, timeouts and messages the client will not send.

use std::time::Instant;

use sealgate_testkit::smtp_sink::Stall;

use super::*;
use crate::client::error::{ProtocolProblem, Stage};

#[tokio::test]
async fn data_451_is_temporary_and_the_next_attempt_can_succeed() {
    let script = SinkScript::default().data_replies(["451 4.3.0 try again later"]);
    let sink = sink(options(script)).await;
    let mut conn = connect(&sink).await;
    let env = envelope(&["r@example.test"]);
    let first = conn.send(&env, MESSAGE).await.expect("transaction");
    let outcome = first.outcome_for("r@example.test");
    assert!(
        matches!(&outcome, (Outcome::Temporary, r) if r.code == 451),
        "{outcome:?}"
    );
    assert_eq!(
        first.data.as_ref().map(|r| r.enhanced),
        Some(Some((4, 3, 0)))
    );
    assert!(sink.received().is_empty());
    assert!(conn.is_usable());

    let second = conn.send(&env, MESSAGE).await.expect("transaction");
    assert!(matches!(
        second.outcome_for("r@example.test"),
        (Outcome::Delivered, _)
    ));
    assert_eq!(sink.received().len(), 1);
}

#[tokio::test]
async fn data_command_refusal_settles_the_accepted_recipients() {
    let script = SinkScript::default().reject_data_command("554 5.7.0 no data today");
    let sink = sink(options(script)).await;
    let mut conn = connect(&sink).await;
    let result = conn
        .send(&envelope(&["r@example.test"]), MESSAGE)
        .await
        .expect("transaction");
    assert!(
        matches!(result.outcome_for("r@example.test"), (Outcome::Permanent, r) if r.code == 554)
    );
    assert_eq!(count_verb(&sink, "RSET"), 1);
}

#[tokio::test]
async fn greeting_554_is_a_permanent_rejection() {
    let sink = sink(options(
        SinkScript::default().greeting("554 5.3.2 no service here"),
    ))
    .await;
    let error = SmtpConnection::connect(sink.addr(), MX, &cfg(), &TlsPolicy::Disabled)
        .await
        .expect_err("must fail");
    assert!(
        matches!(&error, ClientError::Rejected(r) if r.code == 554),
        "{error:?}"
    );
    assert!(error.is_permanent());
    assert_eq!(count_verb(&sink, "EHLO"), 0);
    assert_eq!(count_verb(&sink, "QUIT"), 1);
}

#[tokio::test]
async fn greeting_421_is_temporary() {
    let sink = sink(options(
        SinkScript::default().greeting("421 4.3.2 too busy"),
    ))
    .await;
    let error = SmtpConnection::connect(sink.addr(), MX, &cfg(), &TlsPolicy::Disabled)
        .await
        .expect_err("must fail");
    assert!(
        matches!(&error, ClientError::Rejected(r) if r.code == 421),
        "{error:?}"
    );
    assert!(!error.is_permanent());
}

#[tokio::test]
async fn a_stalled_greeting_times_out_within_the_bound() {
    let sink = sink(options(SinkScript::default().stall(Stall::Greeting))).await;
    let cfg = ClientConfig {
        greeting_timeout: Duration::from_millis(300),
        ..cfg()
    };
    let started = Instant::now();
    let error = SmtpConnection::connect(sink.addr(), MX, &cfg, &TlsPolicy::Disabled)
        .await
        .expect_err("must time out");
    let elapsed = started.elapsed();
    assert!(
        matches!(
            error,
            ClientError::Timeout {
                stage: Stage::Greeting
            }
        ),
        "{error:?}"
    );
    assert!(!error.is_permanent());
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

#[tokio::test]
async fn a_missing_final_reply_times_out_and_retires_the_connection() {
    let sink = sink(options(SinkScript::default().stall(Stall::AfterData))).await;
    let cfg = ClientConfig {
        data_timeout: Duration::from_millis(300),
        ..cfg()
    };
    let mut conn = SmtpConnection::connect(sink.addr(), MX, &cfg, &TlsPolicy::Disabled)
        .await
        .expect("connect");
    let env = envelope(&["r@example.test"]);
    let error = conn.send(&env, MESSAGE).await.expect_err("must time out");
    assert!(
        matches!(
            error,
            ClientError::Timeout {
                stage: Stage::DataEnd
            }
        ),
        "{error:?}"
    );
    assert!(!conn.is_usable());
    let again = conn.send(&env, MESSAGE).await.expect_err("retired");
    assert!(matches!(
        again,
        ClientError::Protocol {
            problem: ProtocolProblem::Unusable,
            ..
        }
    ));
}

#[tokio::test]
async fn a_stalled_mail_reply_times_out_at_mail() {
    let sink = sink(options(SinkScript::default().stall(Stall::Mail))).await;
    let cfg = ClientConfig {
        command_timeout: Duration::from_millis(300),
        ..cfg()
    };
    let mut conn = SmtpConnection::connect(sink.addr(), MX, &cfg, &TlsPolicy::Disabled)
        .await
        .expect("connect");
    let error = conn
        .send(&envelope(&["r@example.test"]), MESSAGE)
        .await
        .expect_err("must time out");
    assert!(
        matches!(error, ClientError::Timeout { stage: Stage::Mail }),
        "{error:?}"
    );
}

#[tokio::test]
async fn smtputf8_needed_but_not_offered_sends_nothing() {
    let sink = sink(SinkOptions {
        smtputf8: false,
        ..options(SinkScript::default())
    })
    .await;
    let mut conn = connect(&sink).await;
    let cases: [(Envelope, &[u8]); 3] = [
        (envelope(&["jörg@example.test"]), MESSAGE),
        (
            Envelope {
                sender: "sénder@example.test".into(),
                recipients: vec!["r@example.test".into()],
                requiretls: false,
            },
            MESSAGE,
        ),
        (
            envelope(&["r@example.test"]),
            "Subject: Grüße\r\n\r\nx\r\n".as_bytes(),
        ),
    ];
    for (env, message) in cases {
        let error = conn.send(&env, message).await.expect_err("must refuse");
        assert!(matches!(error, ClientError::NeedsSmtputf8), "{error:?}");
        assert!(error.is_permanent());
    }
    assert_eq!(count_verb(&sink, "MAIL"), 0);
    // A UTF-8 body alone does not need SMTPUTF8.
    let body = "Subject: x\r\n\r\nGrüße\r\n".as_bytes();
    conn.send(&envelope(&["r@example.test"]), body)
        .await
        .expect("transaction");
    assert_eq!(sink.received().len(), 1);
}

#[tokio::test]
async fn smtputf8_is_requested_when_offered_and_needed() {
    let sink = sink(options(SinkScript::default())).await;
    let mut conn = connect(&sink).await;
    let result = conn
        .send(&envelope(&["jörg@bücher.example"]), MESSAGE)
        .await
        .expect("transaction");
    assert!(matches!(
        result.outcome_for("jörg@bücher.example"),
        (Outcome::Delivered, _)
    ));
    let received = sink.received();
    assert_eq!(received[0].rcpts, ["jörg@bücher.example"]);
    assert!(received[0].mail_params.iter().any(|p| p == "SMTPUTF8"));
}

#[tokio::test]
async fn a_message_above_the_advertised_size_is_too_big() {
    let sink = sink(SinkOptions {
        size: Some(100),
        ..options(SinkScript::default())
    })
    .await;
    let mut conn = connect(&sink).await;
    assert_eq!(conn.extensions().size, Some(100));
    let message = [MESSAGE, &b"x".repeat(200)[..], b"\r\n"].concat();
    let error = conn
        .send(&envelope(&["r@example.test"]), &message)
        .await
        .expect_err("must refuse");
    assert!(
        matches!(error, ClientError::TooBig { limit: 100 }),
        "{error:?}"
    );
    assert!(error.is_permanent());
    assert_eq!(count_verb(&sink, "MAIL"), 0);
    assert!(conn.is_usable());
}

#[tokio::test]
async fn a_bare_lf_or_cr_message_is_refused_before_anything_is_sent() {
    let sink = sink(options(SinkScript::default())).await;
    let mut conn = connect(&sink).await;
    for (message, expected) in [
        (
            &b"Subject: x\r\n\r\nsmuggle\n.\nMAIL FROM:<e@x>\r\n"[..],
            ProtocolProblem::BareLfInMessage,
        ),
        (
            b"Subject: x\r\n\r\nsmuggle\r.\r\n",
            ProtocolProblem::BareCrInMessage,
        ),
    ] {
        let error = conn
            .send(&envelope(&["r@example.test"]), message)
            .await
            .expect_err("must refuse");
        assert!(
            matches!(&error, ClientError::Protocol { problem, .. } if *problem == expected),
            "{error:?}"
        );
        assert!(error.is_permanent());
    }
    assert_eq!(count_verb(&sink, "MAIL"), 0);
}

#[tokio::test]
async fn an_address_that_could_inject_a_command_is_refused() {
    let sink = sink(options(SinkScript::default())).await;
    let mut conn = connect(&sink).await;
    let error = conn
        .send(&envelope(&["r@example.test>\r\nRSET"]), MESSAGE)
        .await
        .expect_err("must refuse");
    assert!(error.is_permanent(), "{error:?}");
    assert_eq!(count_verb(&sink, "MAIL"), 0);
}

#[tokio::test]
async fn connection_refused_is_a_temporary_connect_error() {
    let sink = sink(options(SinkScript::default())).await;
    let addr = sink.addr();
    drop(sink);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let error = SmtpConnection::connect(addr, MX, &cfg(), &TlsPolicy::Disabled)
        .await
        .expect_err("nothing listens");
    assert!(matches!(error, ClientError::Connect { .. }), "{error:?}");
    assert!(!error.is_permanent());
}
