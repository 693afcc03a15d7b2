//! The server starts on an empty directory, and again on the same one: migrations are idempotent,
//! the generated secret is private and persisted, and accounts and tokens survive the restart.
use serde_json::json;

use crate::helpers::{PASSWORD, spawn_with_config, test_config};

#[tokio::test]
async fn starts_on_an_empty_directory_and_again_on_the_existing_one() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut config = test_config(dir.path()).await;
    config.data_dir = data_dir.clone();
    config.jwt_secret = None;
    if std::env::var("TEST_DATABASE_URL").is_err() {
        config.database_url = None; // the embedded default: <data-dir>/goftgu.db
    }

    let first = spawn_with_config(config.clone()).await;
    let health = first.health().await;
    assert_eq!(health.status(), 200);
    let user = first.register("survivor").await;
    first.stop().await;

    let secret_path = data_dir.join("jwt_secret");
    let secret = std::fs::read_to_string(&secret_path).expect("secret persisted");
    assert!(secret.trim().len() >= 43, "secret has at least 256 bits");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret_path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    if config.database_url.is_none() {
        assert!(
            data_dir.join("goftgu.db").exists(),
            "SQLite file in the data directory"
        );
    }

    let second = spawn_with_config(config).await;
    let me = second
        .gql_ok(Some(&user.token), "{ me { username } }", json!({}))
        .await;
    assert_eq!(
        me["me"]["username"], "survivor",
        "token from before the restart is still valid"
    );
    assert!(second.login("survivor", PASSWORD).await["errors"].is_null());
    second.stop().await;
    assert_eq!(
        std::fs::read_to_string(&secret_path).unwrap(),
        secret,
        "secret not regenerated"
    );
}
