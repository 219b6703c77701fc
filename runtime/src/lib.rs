pub mod config;
pub mod host;
pub mod kafka;
pub mod process;
pub mod storage;
