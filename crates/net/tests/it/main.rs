//! The integration tests of this crate, as one test binary (one link
//! instead of one per file). Each module is one former test file.

#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod durable;
mod ingress;
mod leaders;
mod metrics;
mod quic_counts;
mod quic_faults;
mod restart_reset;

/// An address on 127.0.0.1 that was free a moment ago (TCP or UDP).
pub fn free_addr(udp: bool) -> std::net::SocketAddr {
    if udp {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    }
}
