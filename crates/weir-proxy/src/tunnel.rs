//! WebSocket tunnels: once both sides have switched protocols, bytes are copied both
//! ways until either side closes.

/// Copies bytes between the client and the upstream after a `101`; `slot` keeps the
/// upstream connection counted until the tunnel ends.
pub(crate) async fn run(
    down: hyper::upgrade::OnUpgrade,
    up: hyper::upgrade::OnUpgrade,
    slot: Option<crate::pool::UpgradeSlot>,
) {
    let _slot = slot;
    let (Ok(down), Ok(up)) = tokio::join!(down, up) else { return };
    let (mut down, mut up) = (hyper_util::rt::TokioIo::new(down), hyper_util::rt::TokioIo::new(up));
    let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
}
