//! Unit tests of `inbox`.

use super::*;

fn chain_of(storage: &mut [[usize; 2]]) -> Chain {
    let mut chain = Chain::new();
    for b in storage.iter_mut() {
        // SAFETY: distinct, aligned, unused blocks.
        unsafe { chain.push(b.as_mut_ptr().cast()) };
    }
    chain
}

#[test]
fn batches_go_in_until_full_and_come_out_whole() {
    let inbox = Inbox::new();
    let mut storage = vec![[0usize; 2]; 3 * SLOTS];
    let mut parts = storage.chunks_mut(3);
    for _ in 0..SLOTS {
        assert!(inbox.put(chain_of(parts.next().unwrap())).is_ok());
    }
    assert_eq!(inbox.blocks(), 3 * SLOTS);
    let mut extra = [[0usize; 2]; 2];
    let back = inbox.put(chain_of(&mut extra)).expect_err("full");
    assert_eq!(back.len(), 2);
    let mut got = Vec::new();
    while let Some(mut c) = inbox.take() {
        assert_eq!(c.len(), 3);
        while let Some(b) = c.pop() {
            got.push(b as usize);
        }
    }
    assert_eq!(inbox.blocks(), 0);
    got.sort_unstable();
    got.dedup();
    assert_eq!(got.len(), 3 * SLOTS, "every block once");
    assert!(inbox.put(Chain::new()).is_err(), "nothing to put");
}
