pub mod ruma_adapter;
