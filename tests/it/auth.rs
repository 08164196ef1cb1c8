//! Authentication and authorization (issue 6): SCRAM logins through the official driver,
//! role enforcement, the localhost exception, user documents, speculative authentication.

use crate::common::{self, assert_command_error, assert_ok, num, raw, Env};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use mongodb::bson::{doc, spec::BinarySubtype, Binary, Bson, Document};
use mongodb::error::ErrorKind;
use mongodb::sync::Client;
use secantusdb::Server;
use std::io::Write;
use std::net::TcpStream;

pub(crate) const ROOT_PWD: &str = "r00t-secret";

/// An auth-enforcing server whose first user (`root`, role root) was made through the
/// localhost exception; `env.client` is unauthenticated.
pub(crate) fn start_auth() -> Env {
    let env = common::start_with(common::builder().auth(true));
    env.admin_cmd(doc! { "createUser": "root", "pwd": ROOT_PWD, "roles": ["root"] }).expect("first user");
    env
}

/// A driver client logged in as `user` (source `db`) with `mechanism` (None: negotiate).
pub(crate) fn login(server: &Server, user: &str, pwd: &str, db: &str, mechanism: Option<&str>) -> Client {
    let mut uri = server.uri().replacen("mongodb://", &format!("mongodb://{user}:{pwd}@"), 1);
    uri.push_str(&format!("?authSource={db}"));
    if let Some(m) = mechanism {
        uri.push_str(&format!("&authMechanism={m}"));
    }
    common::connect(&uri)
}

pub(crate) fn root(env: &Env) -> Client {
    login(&env.server, "root", ROOT_PWD, "admin", None)
}

pub(crate) fn status(c: &Client) -> Document {
    let r = c.database("admin").run_command(doc! { "connectionStatus": 1, "showPrivileges": true }).run();
    r.expect("connectionStatus").get_document("authInfo").expect("authInfo").clone()
}

pub(crate) fn create_user(c: &Client, db: &str, user: &str, pwd: &str, roles: Bson) {
    let r = c.database(db).run_command(doc! { "createUser": user, "pwd": pwd, "roles": roles }).run();
    assert_ok(&r.expect("createUser"));
}

#[test]
fn scram_sha_256_sha_1_and_negotiated_logins() {
    let env = start_auth();
    let admin = root(&env);
    create_user(&admin, "app", "both", "pw-both", Bson::Array(vec!["read".into()]));
    let r = admin
        .database("app")
        .run_command(
            doc! { "createUser": "old", "pwd": "pw-old", "roles": [], "mechanisms": ["SCRAM-SHA-1"] },
        )
        .run();
    assert_ok(&r.expect("createUser sha1 only"));
    for mech in [Some("SCRAM-SHA-256"), Some("SCRAM-SHA-1"), None] {
        let c = login(&env.server, "both", "pw-both", "app", mech);
        let info = status(&c);
        assert_eq!(
            info.get_array("authenticatedUsers").unwrap(),
            &vec![Bson::Document(doc! { "user": "both", "db": "app" })]
        );
        assert_eq!(
            info.get_array("authenticatedUserRoles").unwrap(),
            &vec![Bson::Document(doc! { "role": "read", "db": "app" })]
        );
    }
    // Negotiation picks SCRAM-SHA-1 for a user that only has SHA-1 credentials.
    let c = login(&env.server, "old", "pw-old", "app", None);
    assert_eq!(status(&c).get_array("authenticatedUsers").unwrap().len(), 1);
    let hello = env.admin_cmd(doc! { "hello": 1, "saslSupportedMechs": "app.old" }).expect("hello");
    assert_eq!(hello.get_array("saslSupportedMechs").unwrap(), &vec![Bson::String("SCRAM-SHA-1".into())]);
    let hello = env.admin_cmd(doc! { "hello": 1, "saslSupportedMechs": "app.nobody" }).expect("hello");
    assert!(!hello.contains_key("saslSupportedMechs"), "{hello}");
}

#[test]
fn wrong_password_is_authentication_failed() {
    let env = start_auth();
    let c = login(&env.server, "root", "not-the-password", "admin", Some("SCRAM-SHA-256"));
    let err = c.database("x").collection::<Document>("c").find_one(doc! {}).run().expect_err("must fail");
    assert!(matches!(*err.kind, ErrorKind::Authentication { .. }), "{err}");
    assert!(err.to_string().contains("Authentication failed."), "{err}");
    // On the wire: a bad proof and an unknown user both get code 18.
    let mut s = raw::connect(env.server.addr());
    let (reply, _) = sasl_start(&mut s, "root", "admin");
    let cid = reply.get_i32("conversationId").unwrap();
    let nonce = server_nonce(&reply);
    let bad = format!("c=biws,r={nonce},p={}", B64.encode([0u8; 32]));
    let r =
        run(&mut s, doc! { "saslContinue": 1, "conversationId": cid, "payload": bin(&bad), "$db": "admin" });
    assert_eq!((r.get_i32("code"), r.get_str("codeName")), (Ok(18), Ok("AuthenticationFailed")), "{r}");
    assert_eq!(r.get_str("errmsg"), Ok("Authentication failed."));
    let (r, _) = sasl_start(&mut s, "ghost", "admin");
    assert_eq!(r.get_i32("code"), Ok(18), "{r}");
}

#[test]
fn unauthenticated_commands_are_refused() {
    let env = start_auth();
    let coll = env.client.database("d").collection::<Document>("c");
    let msg = assert_command_error(coll.find_one(doc! {}).run(), 13, "Unauthorized");
    assert_eq!(msg, "Command find requires authentication");
    assert_command_error(env.client.list_database_names().run(), 13, "Unauthorized");
    // The handshake and diagnostics that mongod runs before authentication still answer.
    assert_ok(&env.admin_cmd(doc! { "ping": 1 }).unwrap());
    assert_ok(&env.admin_cmd(doc! { "buildInfo": 1 }).unwrap());
    let info = env.admin_cmd(doc! { "connectionStatus": 1 }).unwrap();
    assert_eq!(common::path(&info, "authInfo.authenticatedUsers"), &Bson::Array(vec![]));
}

#[test]
fn roles_are_enforced() {
    let env = start_auth();
    let admin = root(&env);
    let (a, b) = (common::unique_name("a"), common::unique_name("b"));
    admin.database(&a).collection::<Document>("c").insert_one(doc! { "_id": 1 }).run().unwrap();
    admin.database(&b).collection::<Document>("c").insert_one(doc! { "_id": 1 }).run().unwrap();
    create_user(&admin, &a, "reader", "pw", Bson::Array(vec!["read".into()]));
    create_user(&admin, &a, "writer", "pw", Bson::Array(vec!["readWrite".into()]));
    create_user(&admin, &a, "useradm", "pw", Bson::Array(vec!["userAdmin".into()]));

    let reader = login(&env.server, "reader", "pw", &a, None);
    let rc = reader.database(&a).collection::<Document>("c");
    assert_eq!(rc.find_one(doc! {}).run().unwrap(), Some(doc! { "_id": 1 }));
    let err = rc.insert_one(doc! { "_id": 2 }).run().expect_err("read cannot insert");
    let (code, name, msg) = common::command_error(&err);
    assert_eq!((code, name.as_str()), (13, "Unauthorized"));
    assert!(msg.starts_with(&format!("not authorized on {a} to execute command {{ insert: \"c\"")), "{msg}");

    let writer = login(&env.server, "writer", "pw", &a, None);
    // mongod's lower-case alias, as pymongo's auth tests send it.
    assert_ok(&writer.database(&a).run_command(doc! { "dbstats": 1 }).run().unwrap());
    writer.database(&a).collection::<Document>("c").insert_one(doc! { "_id": 2 }).run().unwrap();
    let other = writer.database(&b).collection::<Document>("c");
    assert_command_error(other.find_one(doc! {}).run(), 13, "Unauthorized");
    // Without listDatabases a user sees only the databases it has privileges on.
    let names = writer.list_database_names().run().unwrap();
    assert_eq!(names, vec![a.clone()]);
    assert_command_error(
        writer.database(&a).run_command(doc! { "serverStatus": 1 }).run(),
        13,
        "Unauthorized",
    );

    let useradm = login(&env.server, "useradm", "pw", &a, None);
    create_user(&useradm, &a, "made-by-useradm", "pw", Bson::Array(vec!["read".into()]));
    assert_command_error(
        useradm.database(&b).run_command(doc! { "createUser": "x", "pwd": "p", "roles": [] }).run(),
        13,
        "Unauthorized",
    );
    assert_command_error(
        useradm.database(&a).collection::<Document>("c").find_one(doc! {}).run(),
        13,
        "Unauthorized",
    );
}

#[test]
fn custom_roles_inherit_privileges() {
    let env = start_auth();
    let admin = root(&env);
    let (a, b) = (common::unique_name("a"), common::unique_name("b"));
    let r = admin
        .database("admin")
        .run_command(doc! {
            "createRole": "findA",
            "privileges": [{ "resource": { "db": &a, "collection": "c" }, "actions": ["find"] }],
            "roles": [],
        })
        .run();
    assert_ok(&r.unwrap());
    let r = admin
        .database("admin")
        .run_command(doc! {
            "createRole": "combo",
            "privileges": [],
            "roles": ["findA", { "role": "readWrite", "db": &b }],
        })
        .run();
    assert_ok(&r.unwrap());
    let dup = admin
        .database("admin")
        .run_command(doc! { "createRole": "combo", "privileges": [], "roles": [] })
        .run();
    assert_command_error(dup, 51002, "Location51002");
    let cycle =
        admin.database("admin").run_command(doc! { "grantRolesToRole": "findA", "roles": ["combo"] }).run();
    assert_command_error(cycle, 5, "GraphContainsCycle");
    let missing =
        admin.database("admin").run_command(doc! { "grantRolesToRole": "findA", "roles": ["nope"] }).run();
    assert_command_error(missing, 31, "RoleNotFound");

    create_user(&admin, "admin", "combo-user", "pw", Bson::Array(vec!["combo".into()]));
    let c = login(&env.server, "combo-user", "pw", "admin", None);
    assert_eq!(c.database(&a).collection::<Document>("c").find_one(doc! {}).run().unwrap(), None);
    assert_command_error(
        c.database(&a).collection::<Document>("c").insert_one(doc! {}).run(),
        13,
        "Unauthorized",
    );
    c.database(&b).collection::<Document>("x").insert_one(doc! { "v": 1 }).run().unwrap();
    let roles: Vec<Bson> = status(&c).get_array("authenticatedUserRoles").unwrap().clone();
    for r in ["combo", "findA"] {
        assert!(roles.contains(&Bson::Document(doc! { "role": r, "db": "admin" })), "{roles:?}");
    }
    assert!(roles.contains(&Bson::Document(doc! { "role": "readWrite", "db": &b })), "{roles:?}");

    let info = admin
        .database("admin")
        .run_command(doc! { "rolesInfo": "combo", "showPrivileges": true })
        .run()
        .unwrap();
    let role = info.get_array("roles").unwrap()[0].as_document().unwrap().clone();
    assert_eq!(role.get_bool("isBuiltin"), Ok(false));
    assert_eq!(role.get_array("inheritedRoles").unwrap().len(), 2, "{role}");
    let inherited = role.get_array("inheritedPrivileges").unwrap();
    assert!(inherited.iter().any(|p| p.as_document().unwrap().get_document("resource").unwrap()
        == &doc! { "db": &a, "collection": "c" }));

    // Revoking the inherited privilege takes effect on the open connection.
    let r = admin
        .database("admin")
        .run_command(doc! {
            "revokePrivilegesFromRole": "findA",
            "privileges": [{ "resource": { "db": &a, "collection": "c" }, "actions": ["find"] }],
        })
        .run();
    assert_ok(&r.unwrap());
    assert_command_error(
        c.database(&a).collection::<Document>("c").find_one(doc! {}).run(),
        13,
        "Unauthorized",
    );
    let builtin = admin.database("admin").run_command(doc! { "dropRole": "read" }).run();
    assert_command_error(builtin, 49, "InvalidRoleModification");
    assert_ok(&admin.database("admin").run_command(doc! { "dropRole": "combo" }).run().unwrap());
    let gone = admin.database("admin").run_command(doc! { "dropRole": "combo" }).run();
    assert_command_error(gone, 31, "RoleNotFound");
}

#[test]
fn localhost_exception_allows_only_the_first_user() {
    let env = common::start_with(common::builder().auth(true));
    let coll = env.client.database("d").collection::<Document>("c");
    assert_command_error(coll.find_one(doc! {}).run(), 13, "Unauthorized");
    let elsewhere =
        env.client.database("d").run_command(doc! { "createUser": "u", "pwd": "p", "roles": [] }).run();
    assert_command_error(elsewhere, 13, "Unauthorized");
    env.admin_cmd(doc! { "createUser": "first", "pwd": "pw", "roles": ["userAdminAnyDatabase"] }).unwrap();
    // Closed once a user exists.
    let second = env.admin_cmd(doc! { "createUser": "second", "pwd": "pw", "roles": [] });
    assert_command_error(second, 13, "Unauthorized");
    let first = login(&env.server, "first", "pw", "admin", None);
    create_user(&first, "admin", "second", "pw", Bson::Array(vec![]));
    let dup =
        first.database("admin").run_command(doc! { "createUser": "second", "pwd": "x", "roles": [] }).run();
    let msg = assert_command_error(dup, 51003, "Location51003");
    assert_eq!(msg, "User \"second@admin\" already exists");
}

#[test]
fn users_info_shape_and_no_cleartext_password() {
    let env = start_auth();
    let admin = root(&env);
    let db = common::unique_name("ui");
    let pwd = "Very-Distinct-Pa55word";
    let r = admin
        .database(&db)
        .run_command(
            doc! { "createUser": "alice", "pwd": pwd, "roles": ["readWrite"], "customData": { "team": 7 } },
        )
        .run();
    assert_ok(&r.unwrap());
    let info = admin.database(&db).run_command(doc! { "usersInfo": "alice" }).run().unwrap();
    let users = info.get_array("users").unwrap();
    assert_eq!(users.len(), 1);
    let u = users[0].as_document().unwrap();
    assert_eq!(u.get_str("_id"), Ok(format!("{db}.alice").as_str()));
    assert_eq!(u.get_str("user"), Ok("alice"));
    assert_eq!(u.get_str("db"), Ok(db.as_str()));
    assert!(matches!(u.get("userId"), Some(Bson::Binary(b)) if b.subtype == BinarySubtype::Uuid), "{u}");
    assert_eq!(u.get_document("customData").unwrap(), &doc! { "team": 7 });
    assert_eq!(u.get_array("roles").unwrap(), &vec![Bson::Document(doc! { "role": "readWrite", "db": &db })]);
    assert_eq!(
        u.get_array("mechanisms").unwrap(),
        &vec![Bson::String("SCRAM-SHA-1".into()), Bson::String("SCRAM-SHA-256".into())]
    );
    assert!(!u.contains_key("credentials"));

    let info = admin
        .database(&db)
        .run_command(doc! { "usersInfo": 1, "showCredentials": true, "showPrivileges": true })
        .run()
        .unwrap();
    let u = info.get_array("users").unwrap()[0].as_document().unwrap().clone();
    assert_eq!(
        num(common::path(&u, "credentials.SCRAM-SHA-256").as_document().unwrap(), "iterationCount"),
        15000
    );
    assert_eq!(
        num(common::path(&u, "credentials.SCRAM-SHA-1").as_document().unwrap(), "iterationCount"),
        10000
    );
    for k in ["salt", "storedKey", "serverKey"] {
        assert!(common::path(&u, &format!("credentials.SCRAM-SHA-256.{k}")).as_str().is_some());
    }
    assert!(!u.get_array("inheritedPrivileges").unwrap().is_empty());

    // The stored document: salted keys only.
    let stored = admin
        .database("admin")
        .collection::<Document>("system.users")
        .find_one(doc! { "_id": format!("{db}.alice") })
        .run()
        .unwrap()
        .expect("stored user");
    assert!(!stored.contains_key("pwd"));
    let text = format!("{stored:?}");
    assert!(!text.contains(pwd) && !text.contains(&B64.encode(pwd)), "{text}");

    let all = admin.database("admin").run_command(doc! { "usersInfo": { "forAllDBs": true } }).run().unwrap();
    assert!(all.get_array("users").unwrap().len() >= 2);
    assert_command_error(
        admin.database(&db).run_command(doc! { "dropUser": "bob" }).run(),
        11,
        "UserNotFound",
    );

    // A user may look at itself without viewUser.
    let alice = login(&env.server, "alice", pwd, &db, None);
    let me = alice.database(&db).run_command(doc! { "usersInfo": "alice" }).run().unwrap();
    assert_eq!(me.get_array("users").unwrap().len(), 1);
    assert_command_error(alice.database(&db).run_command(doc! { "usersInfo": 1 }).run(), 13, "Unauthorized");

    // Password change: the old one stops working, the new one works.
    let r = admin.database(&db).run_command(doc! { "updateUser": "alice", "pwd": "new-pw" }).run();
    assert_ok(&r.unwrap());
    let old = login(&env.server, "alice", pwd, &db, None);
    assert!(old.database(&db).collection::<Document>("c").find_one(doc! {}).run().is_err());
    let new = login(&env.server, "alice", "new-pw", &db, None);
    new.database(&db).collection::<Document>("c").find_one(doc! {}).run().unwrap();
    let r = admin
        .database(&db)
        .run_command(doc! { "revokeRolesFromUser": "alice", "roles": ["readWrite"] })
        .run();
    assert_ok(&r.unwrap());
    assert_command_error(
        new.database(&db).collection::<Document>("c").find_one(doc! {}).run(),
        13,
        "Unauthorized",
    );
    let r = admin.database(&db).run_command(doc! { "dropAllUsersFromDatabase": 1 }).run().unwrap();
    assert_eq!(num(&r, "n"), 1);
}

#[test]
fn users_survive_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let env = common::start_with(common::builder().auth(true).dbpath(dir.path()));
        env.admin_cmd(doc! { "createUser": "root", "pwd": ROOT_PWD, "roles": ["root"] }).unwrap();
        let c = root(&env);
        create_user(&c, "keep", "kept", "pw", Bson::Array(vec!["read".into()]));
        drop(c);
        drop(env);
    }
    let env = common::start_with(common::builder().auth(true).dbpath(dir.path()));
    // The localhost exception stays closed: users exist on disk.
    assert_command_error(
        env.admin_cmd(doc! { "createUser": "x", "pwd": "p", "roles": [] }),
        13,
        "Unauthorized",
    );
    let c = login(&env.server, "kept", "pw", "keep", Some("SCRAM-SHA-256"));
    assert_eq!(status(&c).get_array("authenticatedUsers").unwrap().len(), 1);
}

#[test]
fn driver_authenticates_speculatively_in_hello() {
    let env = start_auth();
    let admin = root(&env);
    let counts = |c: &Client| {
        let s = c.database("admin").run_command(doc! { "serverStatus": 1 }).run().unwrap();
        let m = common::path(&s, "security.authentication.mechanisms.SCRAM-SHA-256")
            .as_document()
            .unwrap()
            .clone();
        (
            num(m.get_document("speculativeAuthenticate").unwrap(), "successful"),
            num(m.get_document("authenticate").unwrap(), "successful"),
        )
    };
    let (spec0, all0) = counts(&admin);
    let c = login(&env.server, "root", ROOT_PWD, "admin", None);
    assert_ok(&c.database("admin").run_command(doc! { "ping": 1 }).run().unwrap());
    let (spec1, all1) = counts(&c);
    // Every authentication the new client made finished the conversation its hello started.
    assert!(spec1 > spec0, "no speculative authentication: {spec0} -> {spec1}");
    assert_eq!(spec1 - spec0, all1 - all0);

    // On the wire: one hello carries saslStart, one saslContinue completes the login.
    let mut s = raw::connect(env.server.addr());
    let (first_bare, client_first) = client_first("root");
    let hello = run(
        &mut s,
        doc! {
            "hello": 1,
            "speculativeAuthenticate": {
                "saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": bin(&client_first),
                "db": "admin", "options": { "skipEmptyExchange": true },
            },
            "$db": "admin",
        },
    );
    let spec = hello.get_document("speculativeAuthenticate").expect("speculative reply").clone();
    assert_eq!(spec.get_bool("done"), Ok(false));
    let (fin, expected_sig) = client_final(&payload_text(&spec), ROOT_PWD, &first_bare);
    let cid = spec.get_i32("conversationId").unwrap();
    let r =
        run(&mut s, doc! { "saslContinue": 1, "conversationId": cid, "payload": bin(&fin), "$db": "admin" });
    assert_eq!(r.get_bool("done"), Ok(true), "{r}");
    assert_eq!(payload_text(&r), format!("v={}", B64.encode(expected_sig)));
    let st = run(&mut s, doc! { "connectionStatus": 1, "$db": "admin" });
    assert_eq!(
        common::path(&st, "authInfo.authenticatedUsers"),
        &Bson::Array(vec![Bson::Document(doc! { "user": "root", "db": "admin" })])
    );
    // Logging out makes the connection unauthenticated again.
    run(&mut s, doc! { "logout": 1, "$db": "admin" });
    let r = run(&mut s, doc! { "find": "c", "$db": "d" });
    assert_eq!(r.get_i32("code"), Ok(13), "{r}");
}

#[test]
fn without_auth_everything_runs_and_login_still_works() {
    let env = common::start();
    env.admin_cmd(doc! { "createUser": "u", "pwd": "p", "roles": ["read"] }).unwrap();
    env.client.database("d").collection::<Document>("c").insert_one(doc! {}).run().unwrap();
    let c = login(&env.server, "u", "p", "admin", None);
    // Roles are not enforced without --auth.
    c.database("d").collection::<Document>("c").insert_one(doc! {}).run().unwrap();
    assert_eq!(status(&c).get_array("authenticatedUsers").unwrap().len(), 1);
    let x509 = env.admin_cmd(doc! { "authenticate": 1, "mechanism": "MONGODB-X509" });
    assert_command_error(x509, 18, "AuthenticationFailed");
}

// ---- a minimal SCRAM-SHA-256 client for wire-level tests ----

pub(crate) fn bin(s: &str) -> Bson {
    Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: s.as_bytes().to_vec() })
}

pub(crate) fn payload_text(reply: &Document) -> String {
    match reply.get("payload") {
        Some(Bson::Binary(b)) => String::from_utf8(b.bytes.clone()).expect("utf-8 payload"),
        other => panic!("no payload: {other:?} in {reply}"),
    }
}

pub(crate) fn run(s: &mut TcpStream, d: Document) -> Document {
    s.write_all(&raw::op_msg(1, &d)).expect("send");
    raw::op_msg_doc(&raw::read_frame(s).expect("reply"))
}

/// (client-first-bare, client-first) with a fixed client nonce.
pub(crate) fn client_first(user: &str) -> (String, String) {
    let bare = format!("n={user},r=clientNonceForTests0123");
    (bare.clone(), format!("n,,{bare}"))
}

pub(crate) fn sasl_start(s: &mut TcpStream, user: &str, db: &str) -> (Document, String) {
    let (bare, first) = client_first(user);
    let r = run(
        s,
        doc! { "saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": bin(&first), "$db": db, "options": { "skipEmptyExchange": true } },
    );
    (r, bare)
}

pub(crate) fn server_nonce(reply: &Document) -> String {
    let text = payload_text(reply);
    text.split(',').find_map(|a| a.strip_prefix("r=")).expect("nonce").to_string()
}

/// The client-final message for `server_first` and the server signature to expect.
pub(crate) fn client_final(server_first: &str, pwd: &str, first_bare: &str) -> (String, Vec<u8>) {
    use ring::{digest, hmac, pbkdf2};
    let attr =
        |k: &str| server_first.split(',').find_map(|a| a.strip_prefix(k)).expect("attribute").to_string();
    let (nonce, salt, iterations) =
        (attr("r="), B64.decode(attr("s=")).unwrap(), attr("i=").parse::<u32>().unwrap());
    let mut salted = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations.try_into().unwrap(),
        &salt,
        pwd.as_bytes(),
        &mut salted,
    );
    let sign =
        |key: &[u8], data: &[u8]| hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data).as_ref().to_vec();
    let client_key = sign(&salted, b"Client Key");
    let stored = digest::digest(&digest::SHA256, &client_key);
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{first_bare},{server_first},{without_proof}");
    let signature = sign(stored.as_ref(), auth_message.as_bytes());
    let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
    let server_key = sign(&salted, b"Server Key");
    (format!("{without_proof},p={}", B64.encode(proof)), sign(&server_key, auth_message.as_bytes()))
}
