//! Issue 6, continued: cursor ownership and session binding, authorizedCollections /
//! authorizedDatabases, changeOwnPassword / changeOwnCustomData, authenticationRestrictions.

use crate::auth::{
    bin, client_final, create_user, login, payload_text, root, run, sasl_start, server_nonce, start_auth,
};
use crate::common::{self, assert_command_error, assert_ok, raw};
use mongodb::bson::{doc, Bson, Document};
use mongodb::error::ErrorKind;
use mongodb::sync::Client;
use std::net::TcpStream;

/// Inserts `n` documents into `db.c` as `c` and opens a cursor over them with a first batch of 2.
fn open_cursor(c: &Client, db: &str, n: i32) -> i64 {
    let docs: Vec<Document> = (0..n).map(|i| doc! { "_id": i }).collect();
    c.database(db).collection::<Document>("c").insert_many(docs).run().expect("insert");
    let r = c.database(db).run_command(doc! { "find": "c", "batchSize": 2 }).run().expect("find");
    let id = common::path(&r, "cursor.id").as_i64().expect("cursor id");
    assert_ne!(id, 0);
    id
}

fn get_more(c: &Client, db: &str, id: i64) -> mongodb::error::Result<Document> {
    c.database(db).run_command(doc! { "getMore": id, "collection": "c", "batchSize": 1 }).run()
}

#[test]
fn cursors_belong_to_the_user_that_opened_them() {
    let env = start_auth();
    let admin = root(&env);
    let db = common::unique_name("own");
    let rw = Bson::Array(vec![Bson::Document(doc! { "role": "readWrite", "db": &db })]);
    create_user(&admin, "admin", "alice", "pw-a", rw.clone());
    create_user(&admin, "admin", "bob", "pw-b", rw);
    let alice = login(&env.server, "alice", "pw-a", "admin", None);
    let bob = login(&env.server, "bob", "pw-b", "admin", None);
    let id = open_cursor(&alice, &db, 6);

    let msg = assert_command_error(get_more(&bob, &db, id), 13, "Unauthorized");
    assert_eq!(msg, format!("cursor id {id} was not created by the authenticated user"));
    // Even root may not continue another user's cursor.
    assert_command_error(get_more(&admin, &db, id), 13, "Unauthorized");
    // killCursors fails as a whole, killing nothing.
    let kill = bob.database(&db).run_command(doc! { "killCursors": "c", "cursors": [id] }).run();
    let msg = assert_command_error(kill, 13, "Unauthorized");
    assert!(msg.contains(&format!("{db}.c")), "{msg}");
    let r = get_more(&alice, &db, id).expect("owner continues");
    assert_eq!(common::path(&r, "cursor.nextBatch").as_array().map(Vec::len), Some(1));

    // Root holds killAnyCursor; the owner may always kill its own.
    let r = admin.database(&db).run_command(doc! { "killCursors": "c", "cursors": [id] }).run().unwrap();
    assert_eq!(r.get_array("cursorsKilled").unwrap(), &vec![Bson::Int64(id)]);
    let id2 = {
        let r = alice.database(&db).run_command(doc! { "find": "c", "batchSize": 1 }).run().unwrap();
        common::path(&r, "cursor.id").as_i64().unwrap()
    };
    let r = alice
        .database(&db)
        .run_command(doc! { "killCursors": "c", "cursors": [id2, 12345i64] })
        .run()
        .unwrap();
    assert_eq!(r.get_array("cursorsKilled").unwrap(), &vec![Bson::Int64(id2)]);
    assert_eq!(r.get_array("cursorsNotFound").unwrap(), &vec![Bson::Int64(12345)]);
}

#[test]
fn without_auth_any_connection_continues_any_cursor() {
    let env = common::start();
    let db = common::unique_name("noauth");
    env.admin_cmd(doc! { "createUser": "u", "pwd": "pw", "roles": [] }).unwrap();
    let coll = env.client.database(&db).collection::<Document>("c");
    coll.insert_many((0..5).map(|i| doc! { "_id": i })).run().unwrap();
    // Opened by a logged-in user (raw frames carry no lsid), continued by an anonymous one.
    let (mut s, reply) = wire_login(&env, "u", "pw");
    assert_eq!(reply.get_f64("ok"), Ok(1.0), "{reply}");
    let r = run(&mut s, doc! { "find": "c", "batchSize": 1, "$db": &db });
    let id = common::path(&r, "cursor.id").as_i64().unwrap();
    let r = raw::command(env.server.addr(), &doc! { "getMore": id, "collection": "c", "$db": &db });
    assert_eq!(common::path(&r, "cursor.nextBatch").as_array().map(Vec::len), Some(4), "{r}");
}

#[test]
fn a_cursor_opened_in_a_session_stays_in_that_session() {
    let env = common::start();
    let db = common::unique_name("sess");
    let coll = env.client.database(&db).collection::<Document>("c");
    coll.insert_many((0..5).map(|i| doc! { "_id": i })).run().unwrap();
    let mut s1 = env.client.start_session().run().unwrap();
    let mut s2 = env.client.start_session().run().unwrap();
    let r = env
        .client
        .database(&db)
        .run_command(doc! { "find": "c", "batchSize": 1 })
        .session(&mut s1)
        .run()
        .unwrap();
    let id = common::path(&r, "cursor.id").as_i64().unwrap();
    let cmd = doc! { "getMore": id, "collection": "c", "batchSize": 1 };
    let err = env.client.database(&db).run_command(cmd.clone()).session(&mut s2).run();
    let msg = assert_command_error(err, 50738, "Location50738");
    assert!(
        msg.starts_with(&format!("Cannot run getMore on cursor {id}, which was created in session ")),
        "{msg}"
    );
    // Without any lsid (a raw frame: the driver always sends one).
    let mut raw_cmd = cmd.clone();
    raw_cmd.insert("$db", &db);
    let r = raw::command(env.server.addr(), &raw_cmd);
    assert_eq!(r.get_i32("code"), Ok(50737), "{r}");
    assert!(r.get_str("errmsg").unwrap().ends_with(", without an lsid"), "{r}");
    // The right session continues it.
    let r = env.client.database(&db).run_command(cmd).session(&mut s1).run().unwrap();
    assert_eq!(common::path(&r, "cursor.nextBatch").as_array().map(Vec::len), Some(1));
}

#[test]
fn authorized_collections_and_databases_list_what_the_user_may_touch() {
    let env = start_auth();
    let admin = root(&env);
    let (db, other) = (common::unique_name("lc"), common::unique_name("lc_other"));
    for c in ["a", "b", "c"] {
        admin.database(&db).create_collection(c).run().unwrap();
    }
    admin.database(&other).create_collection("x").run().unwrap();
    let r = admin
        .database("admin")
        .run_command(doc! {
            "createRole": "findA",
            "privileges": [{ "resource": { "db": &db, "collection": "a" }, "actions": ["find"] }],
            "roles": [],
        })
        .run();
    assert_ok(&r.unwrap());
    create_user(&admin, "admin", "narrow", "pw", Bson::Array(vec!["findA".into()]));
    let narrow = login(&env.server, "narrow", "pw", "admin", None);
    let d = narrow.database(&db);

    // Without both flags the listCollections action is required.
    assert_command_error(d.run_command(doc! { "listCollections": 1 }).run(), 13, "Unauthorized");
    assert_command_error(
        d.run_command(doc! { "listCollections": 1, "authorizedCollections": true }).run(),
        13,
        "Unauthorized",
    );
    let names = |r: Document| -> Vec<String> {
        let batch = common::path(&r, "cursor.firstBatch").as_array().unwrap().clone();
        let mut v: Vec<String> =
            batch.iter().map(|d| d.as_document().unwrap().get_str("name").unwrap().to_string()).collect();
        v.sort();
        v
    };
    let r = d
        .run_command(doc! { "listCollections": 1, "nameOnly": true, "authorizedCollections": true })
        .run()
        .unwrap();
    assert_eq!(names(r), vec!["a".to_string()]);
    // A user with the action sees everything, flags or not.
    let r = admin
        .database(&db)
        .run_command(doc! { "listCollections": 1, "nameOnly": true, "authorizedCollections": true })
        .run()
        .unwrap();
    assert_eq!(names(r), vec!["a".to_string(), "b".to_string(), "c".to_string()]);

    // listDatabases: implicitly only the authorized databases, explicitly refused with false.
    let dbs = narrow.list_database_names().run().unwrap();
    assert_eq!(dbs, vec![db.clone()]);
    assert_command_error(
        narrow.database("admin").run_command(doc! { "listDatabases": 1, "authorizedDatabases": false }).run(),
        13,
        "Unauthorized",
    );
    // authorizedDatabases: true filters even for a user that may list every database.
    create_user(&admin, &other, "local_reader", "pw", Bson::Array(vec!["read".into()]));
    let all = admin.list_database_names().run().unwrap();
    assert!(all.contains(&db) && all.contains(&other), "{all:?}");
    let r = admin
        .database("admin")
        .run_command(doc! { "listDatabases": 1, "nameOnly": true, "authorizedDatabases": true })
        .run()
        .unwrap();
    let n = r.get_array("databases").unwrap().len();
    assert_eq!(n, all.len(), "root's privileges cover every database");
    let reader = login(&env.server, "local_reader", "pw", &other, None);
    let r = reader
        .database("admin")
        .run_command(doc! { "listDatabases": 1, "nameOnly": true, "authorizedDatabases": true })
        .run()
        .unwrap();
    assert_eq!(r.get_array("databases").unwrap(), &vec![Bson::Document(doc! { "name": &other })]);
}

#[test]
fn change_own_password_and_custom_data() {
    let env = start_auth();
    let admin = root(&env);
    let r = admin
        .database("admin")
        .run_command(doc! {
            "createRole": "selfService",
            "privileges": [{ "resource": { "db": "admin", "collection": "" }, "actions": ["changeOwnPassword", "changeOwnCustomData"] }],
            "roles": [],
        })
        .run();
    assert_ok(&r.unwrap());
    create_user(&admin, "admin", "carol", "old-pw", Bson::Array(vec!["selfService".into()]));
    create_user(&admin, "admin", "dave", "dave-pw", Bson::Array(vec![]));
    let carol = login(&env.server, "carol", "old-pw", "admin", None);
    let a = carol.database("admin");
    assert_ok(&a.run_command(doc! { "updateUser": "carol", "pwd": "new-pw" }).run().unwrap());
    assert_ok(&a.run_command(doc! { "updateUser": "carol", "customData": { "k": 1 } }).run().unwrap());
    // Not someone else, and not her roles.
    assert_command_error(a.run_command(doc! { "updateUser": "dave", "pwd": "x" }).run(), 13, "Unauthorized");
    assert_command_error(
        a.run_command(doc! { "updateUser": "carol", "roles": ["root"] }).run(),
        13,
        "Unauthorized",
    );
    // A user without the actions may not change even its own password.
    let dave = login(&env.server, "dave", "dave-pw", "admin", None);
    assert_command_error(
        dave.database("admin").run_command(doc! { "updateUser": "dave", "pwd": "y" }).run(),
        13,
        "Unauthorized",
    );
    // The new password works, the old one no longer does.
    let again = login(&env.server, "carol", "new-pw", "admin", None);
    let info = again.database("admin").run_command(doc! { "usersInfo": "carol" }).run().unwrap();
    let user = info.get_array("users").unwrap()[0].as_document().unwrap().clone();
    assert_eq!(user.get_document("customData").unwrap(), &doc! { "k": 1 });
    let stale = login(&env.server, "carol", "old-pw", "admin", None);
    let err = stale.list_database_names().run().expect_err("old password");
    assert!(matches!(*err.kind, ErrorKind::Authentication { .. }), "{err}");
}

/// Logs in over the wire with SCRAM-SHA-256; the connection and the final reply.
fn wire_login(env: &common::Env, user: &str, pwd: &str) -> (TcpStream, Document) {
    let mut s = raw::connect(env.server.addr());
    let (reply, bare) = sasl_start(&mut s, user, "admin");
    assert_eq!(reply.get_f64("ok"), Ok(1.0), "{reply}");
    let _ = server_nonce(&reply);
    let (fin, _) = client_final(&payload_text(&reply), pwd, &bare);
    let cid = reply.get_i32("conversationId").unwrap();
    let r =
        run(&mut s, doc! { "saslContinue": 1, "conversationId": cid, "payload": bin(&fin), "$db": "admin" });
    (s, r)
}

#[test]
fn authentication_restrictions_are_stored_shown_and_enforced() {
    let env = start_auth();
    let admin = root(&env);
    let a = admin.database("admin");
    let loopback =
        doc! { "clientSource": ["127.0.0.1/32", "::1/128"], "serverAddress": ["127.0.0.0/8", "::1"] };
    let r = a
        .run_command(doc! {
            "createUser": "near", "pwd": "pw", "roles": [],
            "authenticationRestrictions": [loopback.clone()],
        })
        .run();
    assert_ok(&r.unwrap());
    let far = doc! { "clientSource": ["10.0.0.0/8"] };
    let r = a
        .run_command(doc! {
            "createUser": "far", "pwd": "pw", "roles": [],
            "authenticationRestrictions": [far.clone()],
        })
        .run();
    assert_ok(&r.unwrap());
    let bad = a
        .run_command(doc! {
            "createUser": "bad", "pwd": "pw", "roles": [],
            "authenticationRestrictions": [{ "clientSource": ["300.1.1.1"] }],
        })
        .run();
    assert_command_error(bad, 2, "BadValue");

    let ok = wire_login(&env, "near", "pw").1;
    assert_eq!(ok.get_f64("ok"), Ok(1.0), "{ok}");
    let refused = wire_login(&env, "far", "pw").1;
    assert_eq!(
        (refused.get_i32("code"), refused.get_str("codeName"), refused.get_str("errmsg")),
        (Ok(18), Ok("AuthenticationFailed"), Ok("Authentication failed.")),
        "{refused}"
    );
    let c = login(&env.server, "far", "pw", "admin", None);
    let err = c.list_database_names().run().expect_err("refused address");
    assert!(matches!(*err.kind, ErrorKind::Authentication { .. }), "{err}");

    // Shown by usersInfo on request.
    let info =
        a.run_command(doc! { "usersInfo": "near", "showAuthenticationRestrictions": true }).run().unwrap();
    let user = info.get_array("users").unwrap()[0].as_document().unwrap().clone();
    assert_eq!(
        user.get_array("authenticationRestrictions").unwrap(),
        &vec![Bson::Document(loopback.clone())]
    );
    let plain = a.run_command(doc! { "usersInfo": "near" }).run().unwrap();
    let user = plain.get_array("users").unwrap()[0].as_document().unwrap().clone();
    assert!(!user.contains_key("authenticationRestrictions"), "{user}");

    // A role's restrictions bind every user that inherits it.
    let r = a
        .run_command(doc! {
            "createRole": "remoteOnly", "privileges": [], "roles": [],
            "authenticationRestrictions": [far.clone()],
        })
        .run();
    assert_ok(&r.unwrap());
    let info =
        a.run_command(doc! { "rolesInfo": "remoteOnly", "showAuthenticationRestrictions": true }).run();
    let role = info.unwrap().get_array("roles").unwrap()[0].as_document().unwrap().clone();
    assert_eq!(role.get_array("authenticationRestrictions").unwrap(), &vec![Bson::Document(far.clone())]);
    assert_ok(&a.run_command(doc! { "grantRolesToUser": "near", "roles": ["remoteOnly"] }).run().unwrap());
    let refused = wire_login(&env, "near", "pw").1;
    assert_eq!(refused.get_i32("code"), Ok(18), "{refused}");
    let info = a.run_command(doc! { "usersInfo": "near", "showPrivileges": true }).run().unwrap();
    let user = info.get_array("users").unwrap()[0].as_document().unwrap().clone();
    assert_eq!(user.get_array("inheritedAuthenticationRestrictions").unwrap().len(), 2, "{user}");
    assert_ok(&a.run_command(doc! { "revokeRolesFromUser": "near", "roles": ["remoteOnly"] }).run().unwrap());
    // updateUser replaces the user's own restrictions.
    let r = a.run_command(doc! { "updateUser": "far", "authenticationRestrictions": [loopback] }).run();
    assert_ok(&r.unwrap());
    assert_eq!(wire_login(&env, "far", "pw").1.get_f64("ok"), Ok(1.0));
    assert_eq!(wire_login(&env, "near", "pw").1.get_f64("ok"), Ok(1.0));
}

/// Opens a cursor in an explicit session of `c`; returns the session and the cursor id.
fn session_cursor(c: &Client, db: &str) -> (mongodb::sync::ClientSession, i64) {
    let mut s = c.start_session().run().expect("session");
    let r = c.database(db).run_command(doc! { "find": "c", "batchSize": 1 }).session(&mut s).run().unwrap();
    let id = common::path(&r, "cursor.id").as_i64().unwrap();
    assert_ne!(id, 0);
    (s, id)
}

fn alive(c: &Client, s: &mut mongodb::sync::ClientSession, db: &str, id: i64) -> bool {
    let cmd = doc! { "getMore": id, "collection": "c", "batchSize": 1 };
    match c.database(db).run_command(cmd).session(s).run() {
        Ok(_) => true,
        Err(e) => {
            assert_eq!(common::command_error(&e).0, 43, "{e}");
            false
        }
    }
}

#[test]
fn kill_sessions_by_user_and_role_patterns() {
    let env = start_auth();
    let admin = root(&env);
    let db = common::unique_name("killpat");
    let docs: Vec<Document> = (0..20).map(|i| doc! { "_id": i }).collect();
    admin.database(&db).collection::<Document>("c").insert_many(docs).run().unwrap();
    create_user(
        &admin,
        "admin",
        "reader",
        "pw-r",
        Bson::Array(vec![Bson::Document(doc! { "role": "read", "db": &db })]),
    );
    let rw = Bson::Array(vec![Bson::Document(doc! { "role": "readWrite", "db": &db })]);
    create_user(&admin, "admin", "writer", "pw-w", rw);
    let reader = login(&env.server, "reader", "pw-r", "admin", None);
    let writer = login(&env.server, "writer", "pw-w", "admin", None);

    let (mut rs, rid) = session_cursor(&reader, &db);
    let (mut ws, wid) = session_cursor(&writer, &db);
    let a = admin.database("admin");
    // A role pattern: only the writer holds readWrite.
    let pattern = doc! { "killAllSessionsByPattern": [{ "roles": [{ "role": "readWrite", "db": &db }] }] };
    assert_ok(&a.run_command(pattern).run().unwrap());
    assert!(!alive(&writer, &mut ws, &db, wid), "the writer's session was killed");
    assert!(alive(&reader, &mut rs, &db, rid), "the reader's session was not");
    // A users pattern, and killAllSessions with a user list.
    let (mut ws, wid) = session_cursor(&writer, &db);
    let pattern = doc! { "killAllSessionsByPattern": [{ "users": [{ "user": "reader", "db": "admin" }] }] };
    assert_ok(&a.run_command(pattern).run().unwrap());
    assert!(!alive(&reader, &mut rs, &db, rid));
    assert!(alive(&writer, &mut ws, &db, wid));
    assert_ok(
        &a.run_command(doc! { "killAllSessions": [{ "user": "writer", "db": "admin" }] }).run().unwrap(),
    );
    assert!(!alive(&writer, &mut ws, &db, wid));
    let bad = a.run_command(doc! { "killAllSessionsByPattern": [{ "nobody": 1 }] }).run();
    assert_command_error(bad, 40415, "Location40415");
    // Only killAnySession may do this.
    assert_command_error(
        reader.database("admin").run_command(doc! { "killAllSessions": [] }).run(),
        13,
        "Unauthorized",
    );
}

#[test]
fn users_kill_and_end_only_their_own_sessions() {
    let env = start_auth();
    let admin = root(&env);
    let db = common::unique_name("ownsess");
    let docs: Vec<Document> = (0..20).map(|i| doc! { "_id": i }).collect();
    admin.database(&db).collection::<Document>("c").insert_many(docs).run().unwrap();
    let read = Bson::Array(vec![Bson::Document(doc! { "role": "read", "db": &db })]);
    create_user(&admin, "admin", "ann", "pw-a", read.clone());
    create_user(&admin, "admin", "ben", "pw-b", read);
    let ann = login(&env.server, "ann", "pw-a", "admin", None);
    let ben = login(&env.server, "ben", "pw-b", "admin", None);
    let (mut s, id) = session_cursor(&ann, &db);
    let lsid = s.id().clone();
    for how in ["killSessions", "endSessions"] {
        assert_ok(&ben.database("admin").run_command(doc! { how: [lsid.clone()] }).run().unwrap());
        assert!(alive(&ann, &mut s, &db, id), "{how} by another user leaves the session alone");
    }
    assert_ok(&ann.database("admin").run_command(doc! { "killSessions": [lsid.clone()] }).run().unwrap());
    assert!(!alive(&ann, &mut s, &db, id), "the owner kills its own session");
    // killAnySession (root) kills anyone's.
    let (mut s, id) = session_cursor(&ann, &db);
    let lsid = s.id().clone();
    assert_ok(&admin.database("admin").run_command(doc! { "killSessions": [lsid] }).run().unwrap());
    assert!(!alive(&ann, &mut s, &db, id));
}

#[test]
fn get_more_needs_the_privileges_the_cursor_was_opened_with() {
    let env = start_auth();
    let admin = root(&env);
    let db = common::unique_name("origin");
    for c in ["a", "b", "c"] {
        admin.database(&db).create_collection(c).run().unwrap();
    }
    let docs: Vec<Document> = (0..5).map(|i| doc! { "_id": i }).collect();
    admin.database(&db).collection::<Document>("a").insert_many(docs).run().unwrap();
    let r = admin
        .database("admin")
        .run_command(doc! {
            "createRole": "findAB",
            "privileges": [
                { "resource": { "db": &db, "collection": "a" }, "actions": ["find"] },
                { "resource": { "db": &db, "collection": "b" }, "actions": ["find"] },
            ],
            "roles": [],
        })
        .run();
    assert_ok(&r.unwrap());
    create_user(&admin, "admin", "finder", "pw", Bson::Array(vec!["findAB".into()]));
    let finder = login(&env.server, "finder", "pw", "admin", None);
    let d = finder.database(&db);
    let mut s = finder.start_session().run().unwrap();

    // A listCollections cursor of a user without listCollections continues (its opening
    // needed nothing more than authentication).
    let cmd = doc! { "listCollections": 1, "nameOnly": true, "authorizedCollections": true, "cursor": { "batchSize": 1 } };
    let r = d.run_command(cmd).session(&mut s).run().unwrap();
    let id = common::path(&r, "cursor.id").as_i64().unwrap();
    assert_ne!(id, 0);
    let more = doc! { "getMore": id, "collection": "$cmd.listCollections" };
    let r = d.run_command(more).session(&mut s).run().unwrap();
    assert_eq!(common::path(&r, "cursor.nextBatch").as_array().map(Vec::len), Some(1), "{r}");

    // A find cursor stops when its privilege is revoked.
    let r = d.run_command(doc! { "find": "a", "batchSize": 1 }).session(&mut s).run().unwrap();
    let id = common::path(&r, "cursor.id").as_i64().unwrap();
    let more = doc! { "getMore": id, "collection": "a", "batchSize": 1 };
    d.run_command(more.clone()).session(&mut s).run().expect("still allowed");
    let revoke = doc! {
        "revokePrivilegesFromRole": "findAB",
        "privileges": [{ "resource": { "db": &db, "collection": "a" }, "actions": ["find"] }],
    };
    assert_ok(&admin.database("admin").run_command(revoke).run().unwrap());
    let msg = assert_command_error(d.run_command(more).session(&mut s).run(), 13, "Unauthorized");
    assert_eq!(msg, format!("not authorized for getMore with cursor id {id}"));
}
