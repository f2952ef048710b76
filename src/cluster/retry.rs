//! Retries what is safe to repeat against the API server: a GET or a server-side apply that met a
//! dropped connection, 429 or 5xx is sent again (with backoff); creates and deletes never are.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use tokio::sync::Mutex;

/// How many times a request is sent at most.
const TRIES: u32 = 4;

/// The layer for `kube::client::ClientBuilder::with_layer`.
pub struct RetryLayer;

impl<S> tower_layer::Layer<S> for RetryLayer {
    type Service = Retrying<S>;

    fn layer(&self, inner: S) -> Retrying<S> {
        Retrying {
            inner: Arc::new(Mutex::new(inner)),
        }
    }
}

/// The service: the inner stack behind a lock, so a retry can send again.
pub struct Retrying<S> {
    inner: Arc<Mutex<S>>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, B> tower_service::Service<Request<Body>> for Retrying<S>
where
    S: tower_service::Service<Request<Body>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Send + 'static,
{
    type Response = Response<B>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<B>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let safe = safe_to_repeat(&request);
            let (parts, body) = request.into_parts();
            let mut attempt = 1;
            loop {
                let repeatable = (safe && attempt < TRIES)
                    .then(|| body.try_clone())
                    .flatten();
                let Some(this) = repeatable else {
                    return send(&inner, Request::from_parts(parts, body)).await;
                };
                let outcome = send(&inner, Request::from_parts(parts.clone(), this)).await;
                let again = match &outcome {
                    Ok(response) => retryable_status(response.status()),
                    Err(_) => true,
                };
                if !again {
                    return outcome;
                }
                tracing::debug!(attempt, method = %parts.method, uri = %parts.uri, "retrying an API server request");
                tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt - 1))).await;
                attempt += 1;
            }
        })
    }
}

async fn send<S, B>(inner: &Mutex<S>, request: Request<Body>) -> Result<Response<B>, BoxError>
where
    S: tower_service::Service<Request<Body>, Response = Response<B>>,
    S::Error: Into<BoxError>,
{
    let future = {
        let mut service = inner.lock().await;
        std::future::poll_fn(|cx| service.poll_ready(cx))
            .await
            .map_err(Into::into)?;
        service.call(request)
    };
    future.await.map_err(Into::into)
}

/// GETs (not upgrades: port-forward and exec) and server-side apply PATCHes.
fn safe_to_repeat(request: &Request<Body>) -> bool {
    let upgrade = request.headers().contains_key(http::header::UPGRADE);
    let apply = request.method() == Method::PATCH
        && request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|t| t.as_bytes().starts_with(b"application/apply-patch"));
    !upgrade && (request.method() == Method::GET || apply)
}

fn retryable_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || matches!(
            status,
            StatusCode::INTERNAL_SERVER_ERROR
                | StatusCode::BAD_GATEWAY
                | StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::GATEWAY_TIMEOUT
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, content_type: Option<&str>) -> Request<Body> {
        let mut builder = Request::builder().method(method).uri("/api/v1/pods");
        if let Some(t) = content_type {
            builder = builder.header(http::header::CONTENT_TYPE, t);
        }
        builder.body(Body::empty()).unwrap()
    }

    #[test]
    fn only_reads_and_server_side_applies_are_repeated() {
        assert!(safe_to_repeat(&request(Method::GET, None)));
        assert!(safe_to_repeat(&request(
            Method::PATCH,
            Some("application/apply-patch+yaml")
        )));
        assert!(!safe_to_repeat(&request(
            Method::PATCH,
            Some("application/merge-patch+json")
        )));
        assert!(!safe_to_repeat(&request(
            Method::POST,
            Some("application/json")
        )));
        assert!(!safe_to_repeat(&request(Method::DELETE, None)));
        let mut upgrade = request(Method::GET, None);
        upgrade
            .headers_mut()
            .insert(http::header::UPGRADE, "websocket".parse().unwrap());
        assert!(!safe_to_repeat(&upgrade));
    }
}
