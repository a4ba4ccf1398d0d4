//! REQUIRETLS (RFC 8689): the option goes on MAIL FROM only over TLS to a server that offers
//! it; anything less fails before MAIL and leaves the session usable.

use std::sync::Arc;

use sealgate_testkit::tls::TestCa;

use super::*;

/// A sink offering STARTTLS with a certificate for [`MX`], and a policy trusting its CA.
fn tls_sink(requiretls: bool) -> (SinkOptions, TlsPolicy) {
    let ca = TestCa::new();
    let server = Arc::new(ca.issue(&[MX]).server_config());
    let options = SinkOptions {
        tls: Some(server),
        requiretls,
        ..options(SinkScript::default())
    };
    (options, TlsPolicy::Required(Arc::new(ca.client_config())))
}

fn strict(recipients: &[&str]) -> Envelope {
    Envelope {
        requiretls: true,
        ..envelope(recipients)
    }
}

#[tokio::test]
async fn requiretls_goes_on_mail_from_over_tls_when_the_server_offers_it() {
    let (options, policy) = tls_sink(true);
    let sink = sink(options).await;
    let mut conn = SmtpConnection::connect(sink.addr(), MX, &cfg(), &policy)
        .await
        .expect("connect");
    assert!(conn.tls().is_some() && conn.extensions().requiretls);
    let result = conn
        .send(&strict(&["r@example.test"]), MESSAGE)
        .await
        .expect("transaction");
    assert!(matches!(
        result.outcome_for("r@example.test"),
        (Outcome::Delivered, _)
    ));
    // Without the flag the option is not sent, even though it is offered.
    conn.send(&envelope(&["r@example.test"]), MESSAGE)
        .await
        .expect("transaction");
    let received = sink.received();
    assert_eq!(received.len(), 2);
    assert!(received[0].tls);
    assert!(received[0].mail_params.iter().any(|p| p == "REQUIRETLS"));
    assert!(!received[1].mail_params.iter().any(|p| p == "REQUIRETLS"));
    assert_eq!(sink.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn requiretls_fails_before_mail_when_the_tls_server_does_not_offer_it() {
    let (options, policy) = tls_sink(false);
    let sink = sink(options).await;
    let mut conn = SmtpConnection::connect(sink.addr(), MX, &cfg(), &policy)
        .await
        .expect("connect");
    assert!(conn.tls().is_some() && !conn.extensions().requiretls);
    let error = conn
        .send(&strict(&["r@example.test"]), MESSAGE)
        .await
        .expect_err("must refuse");
    assert!(
        matches!(error, ClientError::RequireTlsUnsupported),
        "{error:?}"
    );
    assert!(error.is_permanent());
    assert_eq!(count_verb(&sink, "MAIL"), 0, "nothing was sent");
    assert!(
        conn.is_usable(),
        "found before MAIL: the session stays usable"
    );
    conn.send(&envelope(&["r@example.test"]), MESSAGE)
        .await
        .expect("the next message goes out");
    assert_eq!(sink.received().len(), 1);
}

#[tokio::test]
async fn requiretls_fails_in_plaintext_even_when_the_server_claims_it() {
    // A server offering REQUIRETLS without TLS (RFC 8689 forbids it) is not believed.
    let ehlo =
        "250-sink.example.test\r\n250-PIPELINING\r\n250-REQUIRETLS\r\n250 ENHANCEDSTATUSCODES";
    let sink = sink(options(SinkScript::default().reject_ehlo(ehlo))).await;
    let mut conn = connect(&sink).await;
    assert!(conn.tls().is_none() && conn.extensions().requiretls);
    let error = conn
        .send(&strict(&["r@example.test"]), MESSAGE)
        .await
        .expect_err("must refuse");
    assert!(
        matches!(error, ClientError::RequireTlsUnsupported),
        "{error:?}"
    );
    assert_eq!(count_verb(&sink, "MAIL"), 0, "nothing was sent");
    assert!(conn.is_usable());
}
