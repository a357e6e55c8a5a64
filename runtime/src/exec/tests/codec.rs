//! The client codec: encode and decode round trips, replica spread, token embedding, shape errors.

use super::*;
use crate::exec::{decode, decode_with_spread, embed_tokens};

#[test]
fn encode_and_decode_round_trip_in_every_packing() {
    let x = random_activation(60, 5, 6);
    let layouts = [
        Layout::columns_packed(5, 6, 8),
        Layout {
            slots: 64,
            block: 16,
            tokens: 5,
            columns: 6,
            group: 1,
        },
        Layout {
            slots: 64,
            block: 8,
            tokens: 5,
            columns: 6,
            group: 4,
        },
        Layout {
            slots: 256,
            block: 32,
            tokens: 5,
            columns: 6,
            group: 2,
        },
    ];
    for layout in layouts {
        let slots = encode(&layout, &x).unwrap();
        assert_eq!(slots.len(), layout.ciphertexts() as usize);
        for (c, vector) in (0..).zip(&slots) {
            for (s, &value) in (0..).zip(vector) {
                let position = crate::plan::SlotPosition {
                    ciphertext: c,
                    slot: s,
                };
                match layout.content(position) {
                    Some((j, t)) => assert_eq!(value, x.get(t as usize, j as usize)),
                    None => assert_eq!(value, 0.0, "{layout} slot {s} of ct {c}"),
                }
            }
        }
        assert_eq!(
            decode_with_spread(&layout, &slots).unwrap(),
            (x.clone(), 0.0)
        );
    }
}

#[test]
fn the_spread_between_replicas_is_reported() {
    let layout = Layout {
        slots: 64,
        block: 8,
        tokens: 5,
        columns: 6,
        group: 4,
    };
    let x = random_activation(61, 5, 6);
    let mut slots = encode(&layout, &x).unwrap();
    // Column 1 sits in blocks 4..8 of ciphertext 0: disturb its third replica at token 2.
    slots[0][6 * 8 + 2] += 0.125;
    let (decoded, spread) = decode_with_spread(&layout, &slots).unwrap();
    assert_eq!(decoded, x, "the first replica is read");
    assert_eq!(spread, 0.125);
}

#[test]
fn embedding_rows_are_read_from_the_table() {
    let checkpoint = fixture("dev-h32");
    let table = checkpoint.embedding();
    let x = embed_tokens(table, &[3, 0, 63]).unwrap();
    assert_eq!((x.tokens(), x.columns()), (3, 32));
    let row: Vec<f64> = table.row(63).into_iter().map(f64::from).collect();
    assert_eq!(x.row(2), row.as_slice());
    assert_eq!(
        embed_tokens(table, &[1, 64]).unwrap_err().to_string(),
        "token 64 at position 1 is not below the vocabulary size 64"
    );
}

#[test]
fn shape_mismatches_are_errors() {
    let layout = Layout {
        slots: 64,
        block: 16,
        tokens: 5,
        columns: 6,
        group: 1,
    };
    assert_eq!(
        encode(&layout, &random_activation(62, 4, 6))
            .unwrap_err()
            .to_string(),
        "the activation is 4x6, the layout holds 5x6"
    );
    assert_eq!(
        Activation::new(2, 3, vec![0.0; 5]).unwrap_err().to_string(),
        "a 2x3 activation needs 6 values, 5 were given"
    );
    let slots = encode(&layout, &random_activation(63, 5, 6)).unwrap();
    assert_eq!(
        decode(&layout, &slots[..1]).unwrap_err().to_string(),
        "decoded value: expected 2 ciphertexts, found 1"
    );
    let mut long = slots.clone();
    long[0].push(0.0);
    assert_eq!(
        decode(&layout, &long).unwrap_err().to_string(),
        "decoded value: ciphertext 0 has 65 slots, the layout has 64"
    );
}
