//! Cursor batches passed through as stored bytes. A find whose documents go to the client
//! unchanged hands its batch over as raw BSON; the reply is encoded with an empty batch array
//! and the documents are spliced into it here, so they are never parsed or re-serialised.

use super::wire::{HEADER_LEN, MAX_MESSAGE_SIZE};
use std::io::Write;

/// Where an OP_MSG reply's body document starts: header, flag bits, section kind.
pub const OP_MSG_BODY_AT: usize = HEADER_LEN + 4 + 1;

fn read_i32(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn add_to_i32(b: &mut [u8], at: usize, delta: usize) -> Option<()> {
    let v = usize::try_from(read_i32(b, at)?).ok()? + delta;
    b.get_mut(at..at + 4)?.copy_from_slice(&i32::try_from(v).ok()?.to_le_bytes());
    Some(())
}

/// Replaces the empty `cursor.firstBatch`/`cursor.nextBatch` array of the reply document at
/// `body_at` in `frame` with `docs`, fixing every enclosing length (reply document, cursor
/// document, message header). The reply must start with the `cursor` field and the cursor
/// document with its batch, as `cmd::cursor::cursor_reply` builds them; anything else leaves
/// the frame unchanged and returns false.
pub fn splice_batch(frame: &mut Vec<u8>, body_at: usize, docs: &[Vec<u8>]) -> bool {
    const CURSOR: &[u8] = b"\x03cursor\0";
    let cursor_at = body_at + 4 + CURSOR.len();
    if frame.get(body_at + 4..cursor_at) != Some(CURSOR) {
        return false;
    }
    let elem_at = cursor_at + 4;
    let key_len = match frame.get(elem_at..) {
        Some(b) if b.starts_with(b"\x04firstBatch\0") => 12,
        Some(b) if b.starts_with(b"\x04nextBatch\0") => 11,
        _ => return false,
    };
    let array_at = elem_at + key_len;
    if frame.get(array_at..array_at + 5) != Some(&[5, 0, 0, 0, 0][..]) {
        return false;
    }
    let mut array = vec![0u8; 4];
    for (i, d) in docs.iter().enumerate() {
        array.push(0x03);
        // The index as decimal digits, written without a String per document.
        let _ = write!(array, "{i}");
        array.push(0);
        array.extend_from_slice(d);
    }
    array.push(0);
    let len = array.len();
    let Ok(len32) = i32::try_from(len) else { return false };
    array[..4].copy_from_slice(&len32.to_le_bytes());
    let delta = len - 5;
    if frame.len() + delta > MAX_MESSAGE_SIZE {
        return false;
    }
    let ok = add_to_i32(frame, 0, delta)
        .and(add_to_i32(frame, body_at, delta))
        .and(add_to_i32(frame, cursor_at, delta));
    if ok.is_none() {
        return false;
    }
    frame.splice(array_at..array_at + 5, array);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::wire;
    use bson::{doc, Document};

    fn raw(d: &Document) -> Vec<u8> {
        let mut v = Vec::new();
        d.to_writer(&mut v).unwrap();
        v
    }

    #[test]
    fn spliced_reply_equals_the_encoded_one() {
        let docs = vec![doc! { "_id": 1, "a": "x" }, doc! { "_id": 2, "b": [1, 2] }];
        for key in ["firstBatch", "nextBatch"] {
            let empty = doc! { "cursor": { key: [], "id": 7i64, "ns": "db.c" }, "ok": 1.0 };
            let full = doc! { "cursor": { key: docs.clone(), "id": 7i64, "ns": "db.c" }, "ok": 1.0 };
            let mut frame = wire::encode_op_msg(1, 2, 0, &empty).unwrap();
            let raws: Vec<_> = docs.iter().map(raw).collect();
            assert!(splice_batch(&mut frame, OP_MSG_BODY_AT, &raws));
            assert_eq!(frame, wire::encode_op_msg(1, 2, 0, &full).unwrap());
        }
    }

    #[test]
    fn other_shapes_are_left_alone() {
        for reply in [
            doc! { "ok": 1.0 },
            doc! { "cursor": { "id": 0i64, "firstBatch": [] } },
            doc! { "cursor": { "firstBatch": [1] } },
        ] {
            let mut frame = wire::encode_op_msg(1, 2, 0, &reply).unwrap();
            let before = frame.clone();
            assert!(!splice_batch(&mut frame, OP_MSG_BODY_AT, &[raw(&doc! { "a": 1 })]));
            assert_eq!(frame, before);
        }
    }
}
