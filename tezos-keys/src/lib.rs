//! Tezos keys, addresses, encodings and watermarked signing (work in progress).
