//! Successful and partly successful transactions.

use super::*;

#[tokio::test]
async fn plain_delivery_arrives_byte_for_byte_through_dot_stuffing() {
    let sink = sink(options(SinkScript::default())).await;
    let message: &[u8] =
        b"Subject: dots\r\n\r\n.\r\n..\r\n.x\r\nmid\r\n.\r\nMAIL FROM:<evil@x>\r\n\r\n.\r\nend\r\n";
    let mut conn = connect(&sink).await;
    let result = conn
        .send(&envelope(&["rcpt@example.test"]), message)
        .await
        .expect("transaction");
    conn.quit().await;

    assert_eq!(result.mail.code, 250);
    assert!(matches!(
        result.outcome_for("rcpt@example.test"),
        (Outcome::Delivered, _)
    ));
    let received = sink.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].data, message);
    assert_eq!(received[0].mail_from, "sender@relay.example.test");
    assert_eq!(received[0].rcpts, ["rcpt@example.test"]);
    assert!(!received[0].tls);
    assert_eq!(sink.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_message_without_final_crlf_gets_one() {
    let sink = sink(options(SinkScript::default())).await;
    let mut conn = connect(&sink).await;
    conn.send(&envelope(&["r@example.test"]), b"Subject: x\r\n\r\nno end")
        .await
        .expect("transaction");
    assert_eq!(sink.received()[0].data, b"Subject: x\r\n\r\nno end\r\n");
}

#[tokio::test]
async fn pipelining_on_and_off_give_the_same_per_recipient_results() {
    let mut results = Vec::new();
    for pipelining in [true, false] {
        let script = SinkScript::default()
            .reject_rcpt("bad@example.test", "550 5.1.1 no such user")
            .reject_rcpt("later@example.test", "450 4.2.1 mailbox busy");
        let sink = sink(pipelined(script, pipelining)).await;
        let mut conn = connect(&sink).await;
        assert_eq!(conn.extensions().pipelining, pipelining);
        let env = envelope(&[
            "bad@example.test",
            "good@example.test",
            "later@example.test",
        ]);
        let result = conn.send(&env, MESSAGE).await.expect("transaction");
        conn.quit().await;
        assert_eq!(
            sink.violations(),
            Vec::<String>::new(),
            "pipelining {pipelining}"
        );
        results.push(result);
    }
    assert_eq!(results[0], results[1]);
    assert_eq!(codes(&results[0]), [550, 250, 450]);
}

#[tokio::test]
async fn mixed_recipients_get_three_outcomes_and_only_the_accepted_one_gets_the_message() {
    let script = SinkScript::default()
        .reject_rcpt("bad@example.test", "550 5.1.1 no such user")
        .reject_rcpt("later@example.test", "450 4.2.1 mailbox busy");
    let sink = sink(options(script)).await;
    let mut conn = connect(&sink).await;
    let env = envelope(&[
        "bad@example.test",
        "later@example.test",
        "good@example.test",
    ]);
    let result = conn.send(&env, MESSAGE).await.expect("transaction");

    let bad = result.outcome_for("bad@example.test");
    assert!(
        matches!(&bad, (Outcome::Permanent, r) if r.enhanced == Some((5, 1, 1))),
        "{bad:?}"
    );
    let later = result.outcome_for("later@example.test");
    assert!(
        matches!(&later, (Outcome::Temporary, r) if r.code == 450),
        "{later:?}"
    );
    let good = result.outcome_for("good@example.test");
    assert!(
        matches!(&good, (Outcome::Delivered, r) if r.code == 250),
        "{good:?}"
    );
    assert!(matches!(
        result.outcome_for("stranger@example.test"),
        (Outcome::Temporary, _)
    ));

    let received = sink.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpts, ["good@example.test"]);
    assert_eq!(received[0].data, MESSAGE);
}

#[tokio::test]
async fn all_recipients_refused_gives_no_data_reply_and_the_connection_stays_usable() {
    for pipelining in [true, false] {
        let script = SinkScript::default()
            .reject_rcpt("a@example.test", "550 5.1.1 no")
            .reject_rcpt("b@example.test", "451 4.3.0 later");
        let sink = sink(pipelined(script, pipelining)).await;
        let mut conn = connect(&sink).await;
        let refused = conn
            .send(&envelope(&["a@example.test", "b@example.test"]), MESSAGE)
            .await
            .expect("first transaction");
        assert_eq!(refused.data, None);
        assert!(matches!(
            refused.outcome_for("a@example.test"),
            (Outcome::Permanent, _)
        ));
        assert!(matches!(
            refused.outcome_for("b@example.test"),
            (Outcome::Temporary, _)
        ));
        assert!(conn.is_usable());
        assert_eq!(count_verb(&sink, "RSET"), 1, "pipelining {pipelining}");
        // Without pipelining the client must not even send DATA.
        assert_eq!(count_verb(&sink, "DATA"), usize::from(pipelining));

        let second = conn
            .send(&envelope(&["c@example.test"]), MESSAGE)
            .await
            .expect("second transaction");
        assert!(matches!(
            second.outcome_for("c@example.test"),
            (Outcome::Delivered, _)
        ));
        assert_eq!(sink.received().len(), 1);
        assert_eq!(sink.received()[0].rcpts, ["c@example.test"]);
        assert_eq!(sink.violations(), Vec::<String>::new());
    }
}

#[tokio::test]
async fn two_transactions_share_one_connection() {
    let sink = sink(options(SinkScript::default())).await;
    let mut conn = connect(&sink).await;
    for rcpt in ["one@example.test", "two@example.test"] {
        let result = conn.send(&envelope(&[rcpt]), MESSAGE).await.expect("send");
        assert!(matches!(result.outcome_for(rcpt), (Outcome::Delivered, _)));
    }
    conn.quit().await;
    assert_eq!(sink.connections(), 1);
    let received = sink.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[1].rcpts, ["two@example.test"]);
    assert_eq!(count_verb(&sink, "RSET"), 0);
    assert_eq!(count_verb(&sink, "QUIT"), 1);
}

#[tokio::test]
async fn mail_from_declares_size_and_8bitmime_when_offered() {
    let sink = sink(SinkOptions {
        size: Some(10_000),
        ..options(SinkScript::default())
    })
    .await;
    let mut conn = connect(&sink).await;
    let message = "Subject: x\r\n\r\nGrüße\r\n".as_bytes();
    conn.send(&envelope(&["r@example.test"]), message)
        .await
        .expect("transaction");
    let received = sink.received();
    let size = format!("SIZE={}", message.len());
    assert_eq!(received[0].mail_params, [size.as_str(), "BODY=8BITMIME"]);
    assert_eq!(received[0].data, message);
}

#[tokio::test]
async fn null_sender_is_sent_as_empty_path() {
    let sink = sink(options(SinkScript::default())).await;
    let mut conn = connect(&sink).await;
    let env = Envelope {
        sender: String::new(),
        recipients: vec!["r@example.test".into()],
        requiretls: false,
    };
    conn.send(&env, MESSAGE).await.expect("transaction");
    assert_eq!(sink.received()[0].mail_from, "");
    assert!(sink.commands().iter().any(|c| c == "MAIL FROM:<>"));
}

#[tokio::test]
async fn ehlo_refused_falls_back_to_helo() {
    let sink = sink(options(
        SinkScript::default().reject_ehlo("502 5.5.1 EHLO not here"),
    ))
    .await;
    let mut conn = connect(&sink).await;
    assert_eq!(conn.extensions(), &Extensions::default());
    conn.send(&envelope(&["r@example.test"]), MESSAGE)
        .await
        .expect("transaction");
    assert_eq!(sink.received().len(), 1);
    assert_eq!(count_verb(&sink, "HELO"), 1);
}

#[tokio::test]
async fn refused_sender_settles_every_recipient_and_resets() {
    for pipelining in [true, false] {
        let script = SinkScript::default().reject_mail("550 5.7.1 sender blocked");
        let sink = sink(pipelined(script, pipelining)).await;
        let mut conn = connect(&sink).await;
        let env = envelope(&["a@example.test", "b@example.test"]);
        let result = conn.send(&env, MESSAGE).await.expect("transaction");
        assert_eq!(result.data, None);
        for rcpt in &env.recipients {
            let outcome = result.outcome_for(rcpt);
            assert!(
                matches!(&outcome, (Outcome::Permanent, r) if r.code == 550),
                "{outcome:?}"
            );
        }
        assert_eq!(result.rcpts.len(), if pipelining { 2 } else { 0 });
        assert_eq!(count_verb(&sink, "RSET"), 1);
        assert!(conn.is_usable());
        assert!(sink.received().is_empty());
    }
}

#[tokio::test]
async fn sinks_on_two_loopback_addresses_share_a_port() {
    let first = sink(options(SinkScript::default())).await;
    let port = first.addr().port();
    let second = sink(SinkOptions::new(
        format!("127.0.0.3:{port}").parse().expect("address"),
    ))
    .await;
    for (sink, rcpt) in [(&first, "one@example.test"), (&second, "two@example.test")] {
        let mut conn = connect(sink).await;
        assert_eq!(conn.peer(), sink.addr());
        conn.send(&envelope(&[rcpt]), MESSAGE).await.expect("send");
        conn.quit().await;
        assert!(sink.wait_for(1, Duration::from_secs(2)).await);
        assert_eq!(sink.received()[0].rcpts, [rcpt]);
    }
}

#[tokio::test]
async fn data_accepted_without_recipients_is_closed_with_a_lone_dot() {
    // RFC 2920 §3.1: a pipelined DATA may get 354 although every RCPT failed.
    let script = SinkScript::default()
        .data_without_recipients()
        .reject_rcpt("a@example.test", "550 5.1.1 no");
    let sink = sink(options(script)).await;
    let mut conn = connect(&sink).await;
    let result = conn
        .send(&envelope(&["a@example.test"]), MESSAGE)
        .await
        .expect("transaction");
    assert_eq!(result.data, None);
    assert!(matches!(
        result.outcome_for("a@example.test"),
        (Outcome::Permanent, _)
    ));
    assert!(conn.is_usable());
    assert_eq!(count_verb(&sink, "RSET"), 1);

    conn.send(&envelope(&["b@example.test"]), MESSAGE)
        .await
        .expect("second transaction");
    let received = sink.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].data, MESSAGE);
    assert_eq!(sink.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn the_message_data_waits_for_its_clearance() {
    for pipelining in [true, false] {
        let sink = sink(pipelined(SinkScript::default(), pipelining)).await;
        let mut conn = connect(&sink).await;
        let mut seen_before_clearance = None;
        let clearance = async {
            // Long enough for the whole exchange and the data to have arrived if they
            // did not wait.
            tokio::time::sleep(Duration::from_millis(300)).await;
            seen_before_clearance = Some(sink.received().len());
            Ok(())
        };
        let result = conn
            .send_cleared(&envelope(&["rcpt@example.test"]), MESSAGE, clearance)
            .await
            .expect("transaction");
        conn.quit().await;
        assert_eq!(seen_before_clearance, Some(0), "pipelining {pipelining}");
        assert!(matches!(
            result.outcome_for("rcpt@example.test"),
            (Outcome::Delivered, _)
        ));
        assert_eq!(sink.received().len(), 1);
        assert_eq!(sink.received()[0].data, MESSAGE);
    }
}

#[tokio::test]
async fn a_message_refused_clearance_is_never_sent_and_the_session_is_dropped() {
    for pipelining in [true, false] {
        let sink = sink(pipelined(SinkScript::default(), pipelining)).await;
        let mut conn = connect(&sink).await;
        let refused = async { Err("lease lost".to_owned()) };
        let err = conn
            .send_cleared(&envelope(&["rcpt@example.test"]), MESSAGE, refused)
            .await
            .expect_err("not cleared");
        assert!(
            matches!(&err, ClientError::NotCleared(r) if r == "lease lost"),
            "{err:?}"
        );
        assert!(!err.is_permanent());
        assert!(!conn.is_usable());
        conn.quit().await;
        // The server saw the data phase open and the connection close: it keeps nothing, and
        // got no QUIT (which would have been message data).
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(sink.received().is_empty(), "pipelining {pipelining}");
        assert_eq!(count_verb(&sink, "DATA"), 1);
        assert_eq!(count_verb(&sink, "QUIT"), 0);
    }
}
