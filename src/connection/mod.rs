pub mod machine;
pub mod wire;
