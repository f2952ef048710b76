//! The integration tests: one binary (one build of `support`), one module per area. Tests run in
//! parallel threads of one process: nothing here may change process-wide state (see support).

mod support;

mod architecture;
mod attest;
mod azure_acr;
mod azure_arm;
mod bad_input;
mod build;
mod chart_images;
mod ci;
mod ci_action;
mod cluster;
mod cluster_aks;
mod cluster_commands;
mod cluster_create;
mod cluster_parts;
mod dev;
mod discovery_cache;
mod durability;
mod example_wasm;
mod fidelity;
mod fleet;
mod fuzz_smoke;
mod hostile_archives;
mod identity;
mod install;
mod install_flow;
mod install_flux;
mod key_vault_sign;
mod locked_app;
mod notation;
mod plugin;
mod prompts;
mod publishers;
mod push;
mod push_acr;
mod push_faults;
mod push_requests;
mod push_resume;
mod scaffold;
mod scaffold_tools;
mod secrets;
mod spin_build;
mod spin_rules;
mod verify;
