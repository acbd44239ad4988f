//! The PostgreSQL backend against a real PostgreSQL that the test starts
//! ([`TestCluster`]).

use super::*;
use crate::conformance;
use crate::testing::{block_on, Monoio, TestCluster};

fn config(url: String) -> PgConfig {
    PgConfig { url, readers: 2, sync_writes: true, tls: None }
}

#[test]
fn postgres_backend_passes_conformance() {
    let cluster = TestCluster::start();
    let next = Cell::new(0);
    block_on(conformance::run_all(|| {
        next.set(next.get() + 1);
        let url = cluster.database(&format!("conformance_{}", next.get()));
        async move { PgDb::new(&config(url)).unwrap().shard_store(&Monoio, 0).await.unwrap() }
    }));
}

#[test]
fn postgres_on_the_same_machine_is_reached_through_its_unix_socket() {
    let cluster = TestCluster::start();
    cluster.database("unix");
    let db = PgDb::new(&config(cluster.unix_url("unix"))).unwrap();
    assert!(matches!(&db.inner.target, PgTarget::Unix(path) if path.ends_with(format!(".s.PGSQL.{}", cluster.port))));
    block_on(async {
        let store = db.shard_store(&Monoio, 0).await.unwrap();
        store.write(vec![Op::PutUser { vshard: 1, user: conformance::user("@a:x") }]).await.unwrap();
        assert!(store.user(1, "@a:x").await.unwrap().is_some());
    });
}

#[test]
fn postgres_newer_schema_is_refused_and_shards_share_one_schema() {
    let cluster = TestCluster::start();
    let url = cluster.database("schema");
    block_on(async {
        let db = PgDb::new(&config(url)).unwrap();
        // Two shards connecting at once: one creates the schema, the other
        // waits on the advisory lock and finds it.
        let (a, b) = futures_util::future::join(db.shard_store(&Monoio, 0), db.shard_store(&Monoio, 1)).await;
        let (a, b) = (a.unwrap(), b.unwrap());
        a.write(vec![Op::PutUser { vshard: 1, user: conformance::user("@a:x") }]).await.unwrap();
        assert!(b.user(1, "@a:x").await.unwrap().is_some());
        a.reader().await.unwrap().execute("UPDATE schema_version SET version = version + 1", &[]).await.unwrap();
        let Err(err) = db.shard_store(&Monoio, 2).await else { panic!("opened a newer schema") };
        assert!(matches!(err, StorageError::NewerSchema { .. }), "{err}");
    });
}

#[test]
fn postgres_version_1_database_is_migrated_and_keeps_its_rows() {
    let cluster = TestCluster::start();
    let url = cluster.database("migrate");
    block_on(async {
        let db = PgDb::new(&config(url)).unwrap();
        let store = db.shard_store(&Monoio, 0).await.unwrap();
        store.write(vec![Op::PutUser { vshard: 1, user: conformance::user("@a:x") }]).await.unwrap();
        // What a version 1 database is: the V1 tables, stamped 1, here with
        // interned keys and event IDs in the tables of version 1.
        let reader = store.reader().await.unwrap();
        for sql in [
            "DROP TABLE registration_tokens",
            "DROP TABLE room_state_key_chunks",
            "DROP TABLE room_event_nid_chunks",
            "DROP TABLE room_event_id_buckets",
            "DROP TABLE room_auth_event_chunks",
            "CREATE TABLE room_state_keys (room_nid bigint NOT NULL, nid integer NOT NULL,
                event_type text NOT NULL, state_key text NOT NULL, PRIMARY KEY (room_nid, nid))",
            "CREATE TABLE room_event_nids (room_nid bigint NOT NULL, nid integer NOT NULL,
                event_id text NOT NULL, PRIMARY KEY (room_nid, nid))",
            "INSERT INTO room_state_keys VALUES (7, 0, 'm.room.create', ''), (7, 1, 'm.room.member', '@é:x'),
                (7, 300, 'm.room.member', '@b:x')",
            "INSERT INTO room_event_nids VALUES (7, 0, '$create'), (7, 130, '$later')",
            "UPDATE schema_version SET version = 1",
        ] {
            reader.execute(sql, &[]).await.unwrap();
        }
        let store = db.shard_store(&Monoio, 1).await.unwrap();
        let rows = store.reader().await.unwrap().query("SELECT version FROM schema_version", &[]).await.unwrap();
        let version: i32 = rows[0].get(0);
        assert_eq!(version, schema::SCHEMA_VERSION);
        assert!(store.user(1, "@a:x").await.unwrap().is_some());
        let key = |nid, event_type: &str, state_key: &str| StateKeyRecord {
            nid,
            event_type: event_type.into(),
            state_key: state_key.into(),
        };
        let keys = [key(0, "m.room.create", ""), key(1, "m.room.member", "@é:x"), key(300, "m.room.member", "@b:x")];
        assert_eq!(store.state_keys(7).await.unwrap(), keys);
        let ids = store.event_ids_of(7, &[130, 0, 1]).await.unwrap();
        assert_eq!(ids, [Some("$later".to_owned()), Some("$create".to_owned()), None]);
        let nids = store.event_nids_of(7, &["$later".into(), "$create".into()]).await.unwrap();
        assert_eq!(nids, [Some(130), Some(0)], "numbers by ID, filled in by the migration");
        let token = RegistrationTokenRecord {
            token: "t".into(),
            uses_allowed: Some(1),
            pending: 0,
            completed: 0,
            expiry_time: None,
        };
        store.write(vec![Op::PutRegistrationToken(token.clone())]).await.unwrap();
        assert_eq!(store.registration_token("t").await.unwrap(), Some(token));
    });
}

/// A CA and a certificate it signed for 127.0.0.1: (CA PEM, chain PEM,
/// key PEM).
/// A test CA, and a server certificate for 127.0.0.1 it signed with its
/// key: `(ca, chain, key)` in PEM; and the CA itself, to sign more.
fn certificates_and_ca() -> (String, String, String, rcgen::Issuer<'static, rcgen::KeyPair>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&key, &issuer).unwrap();
    (ca.pem(), leaf.pem(), key.serialize_pem(), issuer)
}

fn certificates() -> (String, String, String) {
    let (ca, chain, key, _) = certificates_and_ca();
    (ca, chain, key)
}

fn roots(ca_pem: Option<&str>) -> std::sync::Arc<rustls::ClientConfig> {
    client_config(ca_pem, None)
}

fn client_config(ca_pem: Option<&str>, identity: Option<(&str, &str)>) -> std::sync::Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(pem) = ca_pem {
        use rustls::pki_types::pem::PemObject;
        let der = rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        roots.add(der).unwrap();
    }
    super::tls::client_config(roots, identity.map(|(c, k)| (c.as_bytes(), k.as_bytes()))).unwrap()
}

#[test]
fn postgres_cert_authentication_admits_the_client_certificate_and_no_one_without() {
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
    let (ca, chain, key, issuer) = certificates_and_ca();
    let cluster = TestCluster::start_with_client_certs(&chain, &key, &ca);
    let plain_url = cluster.database("certs");
    let url = format!("{plain_url}?sslmode=require");
    // `cert` authentication: the certificate's common name is the user.
    let client_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "postgres");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = params.signed_by(&client_key, &issuer).unwrap();
    block_on(async {
        let identity = Some((client.pem(), client_key.serialize_pem()));
        let with = client_config(Some(&ca), identity.as_ref().map(|(c, k)| (c.as_str(), k.as_str())));
        let store = PgDb::new(&PgConfig { tls: Some(with.clone()), ..config(url.clone()) }).unwrap();
        let store = store.shard_store(&Monoio, 0).await.unwrap();
        store.write(vec![Op::PutUser { vshard: 1, user: conformance::user("@a:x") }]).await.unwrap();
        let without = PgConfig { tls: Some(roots(Some(&ca))), ..config(url) };
        let Err(err) = PgDb::new(&without).unwrap().shard_store(&Monoio, 1).await else { panic!("connected") };
        assert!(err.to_string().contains("certificate"), "{err}");
        // Over a plain connection the certificate would never be shown.
        let plain = PgConfig { tls: Some(with), ..config(plain_url) };
        let Err(err) = PgDb::new(&plain) else { panic!("a client certificate without TLS was accepted") };
        assert!(err.to_string().contains("sslmode=require"), "{err}");
    });
    assert!(super::tls::client_config(rustls::RootCertStore::empty(), Some((b"", b""))).is_err());
}

#[test]
fn postgres_over_tls_verifies_the_server_or_refuses_to_connect() {
    let (ca, chain, key) = certificates();
    let cluster = TestCluster::start_with_tls(&chain, &key);
    let url = format!("{}?sslmode=require", cluster.database("tls"));
    block_on(async {
        let trusting = PgConfig { tls: Some(roots(Some(&ca))), ..config(url.clone()) };
        let store = PgDb::new(&trusting).unwrap().shard_store(&Monoio, 0).await.unwrap();
        store.write(vec![Op::PutUser { vshard: 1, user: conformance::user("@a:x") }]).await.unwrap();
        let reader = store.reader().await.unwrap();
        let rows = reader.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.unwrap();
        assert!(rows[0].get::<_, bool>(0), "the connection is not encrypted");
        // A server whose certificate no trusted CA signed is refused.
        let strangers = PgConfig { tls: Some(roots(None)), ..config(url.clone()) };
        let Err(err) = PgDb::new(&strangers).unwrap().shard_store(&Monoio, 1).await else { panic!("connected") };
        assert!(err.to_string().to_lowercase().contains("certificate"), "{err}");
        assert!(PgDb::new(&config(url)).is_err(), "sslmode=require without roots");
    });
}

#[test]
fn postgres_connections_lost_mid_life_are_replaced() {
    let cluster = TestCluster::start();
    let url = cluster.database("reconnect");
    block_on(async {
        let store = PgDb::new(&config(url)).unwrap().shard_store(&Monoio, 0).await.unwrap();
        store.write(vec![Op::PutUser { vshard: 1, user: conformance::user("@a:x") }]).await.unwrap();
        // Kill every connection of the store, as a PostgreSQL restart would.
        let admin = store.reader().await.unwrap();
        let sql = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid()";
        admin.execute(sql, &[]).await.unwrap();
        admin.execute("SELECT pg_terminate_backend(pg_backend_pid())", &[]).await.ok();
        // Each connection may fail the one call that finds it dead; the
        // next call reconnects. Three tries cover the writer and two readers.
        let mut wrote = false;
        for _ in 0..3 {
            if store.write(vec![Op::PutUser { vshard: 1, user: conformance::user("@b:x") }]).await.is_ok() {
                wrote = true;
                break;
            }
            monoio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(wrote, "writes never recovered");
        let mut read = None;
        for _ in 0..4 {
            if let Ok(user) = store.user(1, "@b:x").await {
                read = user;
                break;
            }
        }
        assert!(read.is_some(), "reads never recovered");
        assert!(store.user(1, "@a:x").await.unwrap().is_some());
    });
}

#[test]
fn a_new_shard_waits_for_the_previous_writer_so_its_late_commit_is_not_overtaken() {
    let cluster = TestCluster::start();
    let url = cluster.database("writer_lock");
    block_on(async {
        let db = PgDb::new(&config(url)).unwrap();
        let old = db.shard_store(&Monoio, 0).await.unwrap();
        // The previous process's writer, still busy: it holds shard 0's
        // lock until its last commit is done.
        let started = std::time::Instant::now();
        let release = async {
            monoio::time::sleep(std::time::Duration::from_millis(700)).await;
            old.write(vec![Op::SetStreamPosition { stream: "events/0".into(), pos: 42 }]).await.unwrap();
            drop(old);
        };
        let (new, ()) = futures_util::future::join(db.shard_store(&Monoio, 0), release).await;
        let new = new.unwrap();
        assert!(started.elapsed() >= std::time::Duration::from_millis(700), "the new writer did not wait");
        assert_eq!(new.stream_position("events/0").await.unwrap(), Some(42), "the late commit is seen");
        // Another shard's writer never waits for shard 0's.
        let other = std::time::Instant::now();
        db.shard_store(&Monoio, 1).await.unwrap();
        assert!(other.elapsed() < std::time::Duration::from_millis(700));
    });
}
