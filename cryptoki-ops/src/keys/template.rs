//! The templates of new EC key halves: the attribute policy of the [module docs](super), in one
//! place.

use cryptoki::object::{Attribute, ObjectClass};

use crate::curve::Curve;

/// The private half's template: the policy of the module docs, in one place.
pub(crate) fn private_key_template(
    curve: Curve,
    label: &str,
    id: &[u8],
    backupable: bool,
) -> Vec<Attribute> {
    let mut template = vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(curve.key_type()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Extractable(backupable),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ];
    if backupable {
        template.push(Attribute::WrapWithTrusted(true));
    }
    template
}

/// The public half's template; `ec_point` is given when the object is created from a known
/// point (restore, replication) rather than generated.
pub(crate) fn public_key_template(
    curve: Curve,
    label: &str,
    id: &[u8],
    ec_point: Option<Vec<u8>>,
) -> Vec<Attribute> {
    let mut template = vec![
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(curve.key_type()),
        Attribute::Token(true),
        // CloudHSM refuses anything but its default, true (AWS CloudHSM user guide, "PKCS #11
        // attributes", footnote 1): see the module docs.
        Attribute::Private(true),
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
        Attribute::Derive(false),
        Attribute::EcParams(curve.ec_params().to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ];
    template.extend(ec_point.map(Attribute::EcPoint));
    template
}
