pub mod ruma_adapter;
pub mod ruma_auth;
