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

/// `n` instances built at the same instant on one fresh PostgreSQL database (empty schema): all
/// of them come up (the migrations run under an advisory lock, one instance at a time) and
/// answer; then `n` again at once on the schema they left. Needs TEST_DATABASE_URL; on SQLite
/// every test has its own file, nothing to race.
async fn start_together(n: usize) {
    if std::env::var("TEST_DATABASE_URL").is_err() {
        eprintln!("needs TEST_DATABASE_URL; not run");
        return;
    }
    let dirs: Vec<_> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
    let base = test_config(dirs[0].path()).await;
    let mut token = None;
    for round in ["empty schema", "existing schema"] {
        let apps = build_together(&base, &dirs, round).await;
        let token = match &token {
            Some(token) => token,
            None => token.insert(apps[0].register("first").await.token),
        };
        for (i, app) in apps.iter().enumerate() {
            assert_eq!(app.health().await.status(), 200, "{round}: instance {i}");
            let me = app
                .gql_ok(Some(token), "{ me { username } }", json!({}))
                .await;
            assert_eq!(me["me"]["username"], "first", "{round}: instance {i}");
        }
        for app in apps {
            app.stop().await;
        }
    }
}

/// One instance per directory on `base`'s database, all built at once, then served.
async fn build_together(
    base: &goftgu::Config,
    dirs: &[tempfile::TempDir],
    round: &str,
) -> Vec<crate::helpers::TestApp> {
    let builds = dirs.iter().map(|dir| {
        let mut config = base.clone();
        config.data_dir = dir.path().to_path_buf();
        goftgu::Application::build(config)
    });
    let built = futures_util::future::join_all(builds).await;
    let secret = base.jwt_secret.clone().unwrap_or_default();
    built
        .into_iter()
        .enumerate()
        .map(|(i, app)| {
            let app = app.unwrap_or_else(|err| {
                panic!(
                    "{round}: instance {i} of {} failed to start: {err:#}",
                    dirs.len()
                )
            });
            crate::helpers::serve_built(app, secret.clone())
        })
        .collect()
}

#[tokio::test]
async fn two_instances_started_at_the_same_instant_on_an_empty_database_all_come_up() {
    start_together(2).await;
}

#[tokio::test]
async fn three_instances_started_at_the_same_instant_on_an_empty_database_all_come_up() {
    start_together(3).await;
}
