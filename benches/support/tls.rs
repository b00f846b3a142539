//! HTTPS for the fake OpenRouter, so the server's own client meets what the
//! real one offers: TLS with HTTP/2 chosen by ALPN, many requests sharing one
//! connection. The certificate authority is made up per run and trusted
//! through `SSL_CERT_FILE`, which the platform verifier reads like any
//! system bundle; nothing in the server is told it is being benchmarked.

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::sync::Arc;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// Streams the fake allows on one connection, as common front ends do: a
/// burst of a thousand requests needs the server's several connections.
const MAX_STREAMS: u32 = 256;

pub struct BenchTls {
    acceptor: TlsAcceptor,
    /// Holds the CA bundle `SSL_CERT_FILE` points at.
    _bundle: tempfile::TempDir,
}

impl BenchTls {
    /// Makes a CA and a certificate for 127.0.0.1, and makes this process
    /// trust the CA. Call before any thread starts: it sets an environment
    /// variable.
    pub fn trusted_by_this_process() -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().signed_by(&key, &issuer).unwrap();

        let bundle = tempfile::tempdir().unwrap();
        let bundle_file = bundle.path().join("bench-ca.pem");
        std::fs::write(&bundle_file, ca_cert.pem()).unwrap();
        std::env::set_var("SSL_CERT_FILE", &bundle_file);

        let private_key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], private_key)
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Self { acceptor: TlsAcceptor::from(Arc::new(config)), _bundle: bundle }
    }

    /// Serves `app` over HTTPS on a loopback port; returns its base URL.
    pub async fn serve(&self, app: Router, listener: tokio::net::TcpListener) -> String {
        let address = format!("https://{}", listener.local_addr().unwrap());
        let acceptor = self.acceptor.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(stream).await else { return };
                    let mut builder = auto::Builder::new(TokioExecutor::new());
                    builder.http2().max_concurrent_streams(MAX_STREAMS);
                    let _ = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app)).await;
                });
            }
        });
        address
    }
}
