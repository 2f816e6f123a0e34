//! modelyard: a self-hosted machine-learning model registry in one binary.
//!
//! `api` (HTTP surfaces) and `web` (HTML pages) → `domain` (plain Rust rules and operations) → `store` (metadata and
//! blob storage traits with their embedded implementations).

pub mod admin;
pub mod api;
pub mod client;
pub mod config;
pub mod connections;
pub mod domain;
pub mod identity;
pub mod migrate;
pub mod server;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod web;
pub mod webhooks;

pub use api::app;
