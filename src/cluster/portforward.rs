//! `port-forward` without kubectl: a local listener on 127.0.0.1 whose every connection is tunnelled
//! to port 80 of a Ready pod through the API server (kube's websocket port-forward).

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use tokio::net::{TcpListener, TcpStream};

use super::connect::Connection;

/// The app's HTTP port in the pod (containerd-shim-spin listens on 80).
pub const APP_PORT: u16 = 80;

/// Binds `127.0.0.1:<local_port>` (0 picks one) and returns the listener and its port.
pub async fn bind(local_port: u16) -> anyhow::Result<(TcpListener, u16)> {
    let listener = TcpListener::bind(("127.0.0.1", local_port))
        .await
        .map_err(|e| {
            crate::bad_input!("cannot listen on 127.0.0.1:{local_port}: {e}; pick another --port")
        })?;
    let port = listener.local_addr()?.port();
    Ok((listener, port))
}

/// Serves connections until Ctrl-C.
pub async fn serve(
    conn: &Connection,
    namespace: &str,
    pod: &str,
    listener: TcpListener,
) -> anyhow::Result<()> {
    let pods: Api<Pod> = Api::namespaced(conn.upgrades()?, namespace);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (socket, _) = accepted?;
                let pods = pods.clone();
                let pod = pod.to_string();
                tokio::spawn(async move {
                    if let Err(e) = tunnel(&pods, &pod, socket).await {
                        tracing::warn!("port-forward connection to {pod} failed: {e}");
                    }
                });
            }
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

async fn tunnel(pods: &Api<Pod>, pod: &str, mut socket: TcpStream) -> anyhow::Result<()> {
    let mut forwarder = pods.portforward(pod, &[APP_PORT]).await?;
    let mut upstream = forwarder
        .take_stream(APP_PORT)
        .ok_or_else(|| anyhow::anyhow!("the API server opened no stream for port {APP_PORT}"))?;
    tokio::io::copy_bidirectional(&mut socket, &mut upstream).await?;
    drop(upstream);
    forwarder.join().await?;
    Ok(())
}
