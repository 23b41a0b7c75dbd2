//! Safe, pooled PKCS#11 key operations (work in progress).
