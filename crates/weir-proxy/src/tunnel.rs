//! WebSocket tunnels: once both sides have switched protocols, bytes are copied both
//! ways until either side closes.

use crate::h1::server::OnUpgrade;
use crate::pool::H1Conn;
use crate::prefixed::Prefixed;

/// Copies bytes between the client and the upstream after a `101`; the upstream
/// connection stays counted against its pool's limits until the tunnel ends.
pub(crate) async fn run(down: OnUpgrade, up: Box<H1Conn>) {
    let (stream, rest, _slot) = up.into_upgraded();
    let Some(down) = down.upgraded().await else { return };
    let mut down = Prefixed { rest: down.rest, io: down.stream };
    let mut up = Prefixed { rest, io: stream };
    let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
}
