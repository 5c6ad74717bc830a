//! `clawveil cert renew`: delegated to the running manager, or done by the CLI itself
//! when nothing runs; the result is stored and (when running) swapped in.

use std::time::Duration;

use clawveil_acme::RenewOutcome;

use crate::support::*;

#[test]
fn cert_renew_is_delegated_to_the_running_manager() {
    let tmp = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let ports = Ports::new();
        let mut pebble = Pebble::prepare(tmp.path(), ports.http, ports.https, 0);
        pebble.start();
        let cfg = config(tmp.path(), ports, upstream().await, &pebble, "http-01");
        let (node, started) = Node::start(cfg.clone(), ports, fast()).await;
        started.unwrap();
        node.wait_ready(Duration::from_secs(30)).await;
        let roots = pebble.root().await;
        let (_, _, before) = node.get(&roots, "/").await.unwrap();

        let outcome = clawveil_acme::renew_now(&cfg, Duration::from_secs(60))
            .await
            .expect("renewed");
        let RenewOutcome::ByRunningProcess(status) = outcome else {
            panic!("expected delegation: {outcome:?}")
        };
        assert_eq!(status[0].names, vec![DOMAIN.to_string()]);
        let (code, _, after) = node.get(&roots, "/").await.unwrap();
        assert_eq!(code, 200);
        assert_ne!(
            before, after,
            "the new certificate is served without a restart"
        );
        assert_eq!(node.counter("orders", &["ok"]), 2);
        let store_dir = tmp.path().join("store");
        assert!(
            !store_dir.join("renew-request").exists()
                && !store_dir.join("renew-result.json").exists()
        );
        node.stop().await;
    });
}

#[test]
fn cert_renew_without_a_running_process_answers_challenges_itself() {
    let tmp = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let ports = Ports::new();
        let mut pebble = Pebble::prepare(tmp.path(), ports.http, ports.https, 0);
        pebble.start();
        let cfg = config(tmp.path(), ports, upstream().await, &pebble, "tls-alpn-01");
        let outcome = clawveil_acme::renew_now(&cfg, Duration::from_secs(60))
            .await
            .expect("renewed");
        let RenewOutcome::Here(status) = outcome else {
            panic!("expected the CLI to order: {outcome:?}")
        };
        assert_eq!(status[0].names, vec![DOMAIN.to_string()]);
        assert!(status[0].problem.is_none());
        for (path, mode) in modes(&tmp.path().join("store")) {
            assert_eq!(mode, 0o600, "{}", path.display());
        }

        // the next start serves it at once
        let (node, started) = Node::start(cfg, ports, fast()).await;
        started.unwrap();
        assert!(node.store.readiness().is_ok());
        let roots = pebble.root().await;
        assert_eq!(node.get(&roots, "/").await.unwrap().0, 200);
        assert_eq!(node.counter("orders", &["ok"]), 0);
        node.stop().await;
    });
}
