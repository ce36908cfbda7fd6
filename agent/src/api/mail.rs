//! Mail methods (`mail.*`, INTERFACE §4): folders and messages from the mirror, bodies on demand.

use actix::Addr;
use opconnect_actors::hub::Hub;
use opconnect_actors::store::Store;
use opconnect_ipc::RpcError;
use serde_json::Value;

pub async fn call(
    _hub: &Addr<Hub>,
    _store: &Store,
    method: &str,
    _params: &Value,
) -> Result<Value, RpcError> {
    Err(RpcError::method_not_found(method))
}
