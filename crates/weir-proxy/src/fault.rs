//! The fault stage (Envoy's fault filter, which Istio puts after CORS and before the
//! router): the delay drawn for the request, then the abort drawn for it. The delay
//! holds the request before the router sees it, so it does not count against the
//! route's timeout; an abort answers without contacting the upstream and is never
//! retried (the router never runs).

use weir_table::Fault;

use crate::record::Record;
use crate::respond::Local;
use crate::telemetry::Flags;

/// Applies the faults drawn for this request: `Some` is the abort's reply.
pub(crate) async fn inject(fault: &Fault, rec: &mut Record) -> Option<Local> {
    if let Some(d) = fault.delay {
        rec.flags.insert(Flags::DELAY_INJECTED);
        // Boxed: only delayed requests carry a timer in their state.
        Box::pin(tokio::time::sleep(d)).await;
    }
    fault.abort.map(Local::fault_abort)
}
