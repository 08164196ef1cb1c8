//! Generic command arguments checked in the dispatcher: the Stable API, readConcern, and
//! cursor batch semantics of runCommand-style cursors.

use crate::common::*;
use mongodb::bson::{doc, Bson};

#[test]
fn stable_api_strict_refuses_commands_outside_version_one() {
    let env = start();
    let db = env.db("api");
    db.collection::<mongodb::bson::Document>("c").insert_one(doc! { "a": 1 }).run().unwrap();
    let ok = db.run_command(doc! { "find": "c", "apiVersion": "1", "apiStrict": true }).run().unwrap();
    assert_ok(&ok);
    let msg = assert_command_error(
        db.run_command(doc! { "distinct": "c", "key": "a", "apiVersion": "1", "apiStrict": true }).run(),
        323,
        "APIStrictError",
    );
    assert!(msg.contains("the command distinct is not in API Version 1"), "{msg}");
    assert_command_error(db.run_command(doc! { "ping": 1, "apiVersion": "2" }).run(), 322, "APIVersionError");
    assert_command_error(
        db.run_command(doc! { "ping": 1, "apiStrict": true }).run(),
        4886600,
        "Location4886600",
    );
}

#[test]
fn unknown_read_concern_level_is_refused() {
    let env = start();
    let db = env.db("rc");
    assert_command_error(
        db.run_command(doc! { "find": "c", "readConcern": { "level": "unknown" } }).run(),
        2,
        "BadValue",
    );
    for level in ["local", "majority", "linearizable", "available", "snapshot"] {
        assert_ok(&db.run_command(doc! { "find": "c", "readConcern": { "level": level } }).run().unwrap());
    }
}

#[test]
fn get_more_without_batch_size_returns_the_rest() {
    let env = start();
    let db = env.db("gm");
    let c = db.collection::<mongodb::bson::Document>("c");
    c.insert_many((1..=5).map(|i| doc! { "_id": i })).run().unwrap();
    let mut s = env.client.start_session().run().unwrap();
    let first = db.run_command(doc! { "find": "c", "batchSize": 2 }).session(&mut s).run().unwrap();
    let id = path(&first, "cursor.id").clone();
    assert!(matches!(id, Bson::Int64(n) if n != 0));
    let more = db.run_command(doc! { "getMore": id, "collection": "c" }).session(&mut s).run().unwrap();
    assert_eq!(path(&more, "cursor.nextBatch").as_array().unwrap().len(), 3);
    assert_eq!(path(&more, "cursor.id"), &Bson::Int64(0));
}

#[test]
fn fsync_flushes_and_checkpoints() {
    let env = start();
    let r = env.admin_cmd(doc! { "fsync": 1 }).unwrap();
    assert_ok(&r);
    assert_command_error(env.admin_cmd(doc! { "fsync": 1, "lock": true }), 115, "CommandNotSupported");
}

#[test]
fn unknown_statement_fields_fail_the_command() {
    let env = start();
    let db = env.db("stmt");
    db.collection::<mongodb::bson::Document>("c").insert_one(doc! { "_id": 1 }).run().unwrap();
    let msg = assert_command_error(
        db.run_command(doc! {
            "update": "c",
            "updates": [{ "q": {}, "u": { "$set": { "x": 1 } }, "sort": { "_id": -1 } }],
        })
        .run(),
        40415,
        "Location40415",
    );
    assert_eq!(msg, "BSON field 'update.updates.sort' is an unknown field.");
    assert_command_error(
        db.run_command(doc! { "delete": "c", "deletes": [{ "q": {}, "limit": 0, "bogus": 1 }] }).run(),
        40415,
        "Location40415",
    );
    // Nothing was changed.
    let d = db.collection::<mongodb::bson::Document>("c").find_one(doc! {}).run().unwrap().unwrap();
    assert_eq!(d, doc! { "_id": 1 });
}

#[test]
fn max_time_always_time_out_fails_commands_with_max_time_ms() {
    let env = start();
    let db = env.db("maxtime");
    env.admin_cmd(doc! { "configureFailPoint": "maxTimeAlwaysTimeOut", "mode": "alwaysOn" }).unwrap();
    assert_command_error(
        db.run_command(doc! { "find": "c", "maxTimeMS": 100 }).run(),
        50,
        "MaxTimeMSExpired",
    );
    // Commands without maxTimeMS are untouched.
    assert_ok(&db.run_command(doc! { "find": "c" }).run().unwrap());
    env.admin_cmd(doc! { "configureFailPoint": "maxTimeAlwaysTimeOut", "mode": "off" }).unwrap();
    assert_ok(&db.run_command(doc! { "find": "c", "maxTimeMS": 100 }).run().unwrap());
}

#[test]
fn projecting_out_the_resume_token_is_a_non_resumable_error() {
    let env = start();
    let db = env.db("cs280");
    let r = db
        .run_command(doc! { "aggregate": "c", "pipeline": [{ "$changeStream": {} }, { "$project": { "_id": 0 } }], "cursor": {} })
        .run()
        .unwrap();
    let id = path(&r, "cursor.id").clone();
    db.collection::<mongodb::bson::Document>("c").insert_one(doc! { "x": 1 }).run().unwrap();
    let err = db.run_command(doc! { "getMore": id, "collection": "c" }).run().unwrap_err();
    assert_eq!(command_error(&err).0, 280);
    assert!(err.contains_label("NonResumableChangeStreamError"), "{err}");
}

#[test]
fn kill_cursors_reaches_database_change_streams() {
    let env = start();
    let db = env.db("killcs");
    let r = db
        .run_command(doc! { "aggregate": 1, "pipeline": [{ "$changeStream": {} }], "cursor": {} })
        .run()
        .unwrap();
    let id = path(&r, "cursor.id").clone();
    assert_eq!(path(&r, "cursor.ns"), &Bson::String(format!("{}.$cmd.aggregate", db.name())));
    let k = db.run_command(doc! { "killCursors": "$cmd.aggregate", "cursors": [id.clone()] }).run().unwrap();
    assert_eq!(k.get_array("cursorsKilled").unwrap(), &vec![id.clone()]);
    let err = db.run_command(doc! { "getMore": id, "collection": "$cmd.aggregate" }).run().unwrap_err();
    assert_eq!(command_error(&err).0, 43);
}

#[test]
fn strict_api_refuses_stages_outside_version_1() {
    use mongodb::bson::doc;
    let env = crate::common::start();
    let admin = env.client.database("admin");
    let cmd = |stage: mongodb::bson::Document| {
        doc! { "aggregate": 1, "pipeline": [stage], "cursor": {}, "apiVersion": "1", "apiStrict": true }
    };
    let err = admin.run_command(cmd(doc! { "$listLocalSessions": {} })).run().unwrap_err();
    assert_eq!(crate::common::command_error(&err).1, "APIStrictError");
    assert!(admin.run_command(cmd(doc! { "$documents": [{ "a": 1 }] })).run().is_ok());
}

#[test]
fn strict_api_refuses_a_version_2_command() {
    use mongodb::bson::doc;
    let env = crate::common::start();
    let db = env.db("apiv2");
    assert!(db.run_command(doc! { "testVersion2": 1 }).run().is_ok());
    let err =
        db.run_command(doc! { "testVersion2": 1, "apiVersion": "1", "apiStrict": true }).run().unwrap_err();
    let (_, name, msg) = crate::common::command_error(&err);
    assert_eq!(name, "APIStrictError");
    assert!(msg.to_lowercase().contains("command testversion2 is not in api version 1"), "{msg}");
}
