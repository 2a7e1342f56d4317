//! The two gRPC services, routed by hand the way generated tonic servers route: one
//! `tower` service per gRPC service, dispatching on the request path to
//! `tonic::server::Grpc` with a prost codec.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::BoxBody;
use tonic::codec::ProstCodec;
use tonic::codegen::{http, Body, BoxFuture, Service, StdError};
use tonic::server::{Grpc, NamedService};
use tonic::{Request, Response, Status};

use super::messages as pb;
use super::streams::{AppendSvc, ReadSvc};
use super::State;

/// `event_store.client.streams.Streams`.
#[derive(Clone)]
pub struct Streams(pub Arc<State>);

impl NamedService for Streams {
    const NAME: &'static str = "event_store.client.streams.Streams";
}

impl<B> Service<http::Request<B>> for Streams
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<BoxBody>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let state = self.0.clone();
        match req.uri().path() {
            "/event_store.client.streams.Streams/Read" => Box::pin(async move {
                let mut grpc = Grpc::new(ProstCodec::<pb::ReadResp, pb::ReadReq>::default());
                Ok(grpc.server_streaming(ReadSvc(state), req).await)
            }),
            "/event_store.client.streams.Streams/Append" => Box::pin(async move {
                let mut grpc = Grpc::new(ProstCodec::<pb::AppendResp, pb::AppendReq>::default());
                Ok(grpc.client_streaming(AppendSvc(state), req).await)
            }),
            other => unimplemented(other),
        }
    }
}

/// `event_store.client.server_features.ServerFeatures`.
#[derive(Clone)]
pub struct Features;

impl NamedService for Features {
    const NAME: &'static str = "event_store.client.server_features.ServerFeatures";
}

struct SupportedMethods;

impl tonic::server::UnaryService<pb::Empty> for SupportedMethods {
    type Response = pb::SupportedMethods;
    type Future = BoxFuture<Response<pb::SupportedMethods>, Status>;

    fn call(&mut self, _: Request<pb::Empty>) -> Self::Future {
        let method = |name: &str| pb::SupportedMethod {
            method_name: name.to_owned(),
            service_name: "event_store.client.streams.streams".to_owned(),
            features: Vec::new(),
        };
        let methods = pb::SupportedMethods {
            methods: vec![method("read"), method("append")],
            event_store_server_version: "24.10.0".to_owned(),
        };
        Box::pin(async move { Ok(Response::new(methods)) })
    }
}

impl<B> Service<http::Request<B>> for Features
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<BoxBody>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        match req.uri().path() {
            "/event_store.client.server_features.ServerFeatures/GetSupportedMethods" => {
                Box::pin(async move {
                    let mut grpc =
                        Grpc::new(ProstCodec::<pb::SupportedMethods, pb::Empty>::default());
                    Ok(grpc.unary(SupportedMethods, req).await)
                })
            }
            other => unimplemented(other),
        }
    }
}

fn unimplemented(path: &str) -> BoxFuture<http::Response<BoxBody>, Infallible> {
    let status = Status::unimplemented(format!("the fake server does not serve {path}"));
    Box::pin(async move { Ok(status.into_http()) })
}
