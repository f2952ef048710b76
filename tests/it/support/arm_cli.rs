//! The real `spin-aks` binary against the fake ARM, signed in by a fake `az` on an otherwise empty
//! PATH: its private home and state file, and a check that no token reaches any output or the state.

use std::path::PathBuf;

use super::arm::{write_scoped_az, FakeArm};

pub const ARM_TOKEN: &str = "arm-token-3f9a1c";
pub const AKS_TOKEN: &str = "aks-token-77c1d0";
const AKS_SCOPE: &str = "6dae42f8-4368-4678-94ff-3960e28e3630/.default";

pub struct Rig {
    pub arm: FakeArm,
    pub home: tempfile::TempDir,
    pub bin: tempfile::TempDir,
}

impl Rig {
    /// A fake ARM with one subscription, and a fake `az` that signs in to it and to AKS.
    pub async fn start(subscription: &str) -> Rig {
        let arm = FakeArm::start(ARM_TOKEN, AKS_TOKEN).await;
        let bin = tempfile::tempdir().unwrap();
        let arm_scope = format!("{}/.default", arm.endpoint);
        write_scoped_az(
            bin.path(),
            &[(&arm_scope, ARM_TOKEN), (AKS_SCOPE, AKS_TOKEN)],
        );
        arm.add_subscription(subscription, "Dev");
        Rig {
            arm,
            home: tempfile::tempdir().unwrap(),
            bin,
        }
    }

    pub fn state_path(&self) -> PathBuf {
        self.home.path().join("state")
    }

    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_spin-aks"));
        cmd.args(args)
            .env_clear()
            .env("PATH", self.bin.path())
            .env("HOME", self.home.path())
            .env("SPIN_AKS_STATE_FILE", self.state_path())
            .env("SPIN_AKS_ARM_ENDPOINT", &self.arm.endpoint)
            .env("SPIN_AKS_ARM_DELAY_SCALE", "0")
            .env(
                "AZURE_POD_IDENTITY_AUTHORITY_HOST",
                format!("http://{closed}"),
            )
            .current_dir(self.home.path());
        cmd
    }

    /// Runs the binary; no token may appear in its output or in the state file.
    pub async fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut cmd = self.command(args);
        let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        );
        let state = std::fs::read_to_string(self.state_path()).unwrap_or_default();
        for token in [ARM_TOKEN, AKS_TOKEN] {
            assert!(
                !stdout.contains(token) && !stderr.contains(token) && !state.contains(token),
                "a token leaked: {stdout}\n{stderr}\n{state}"
            );
        }
        (output.status.code().unwrap_or(-1), stdout, stderr)
    }

    pub fn state(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.state_path()).unwrap()).unwrap()
    }
}

pub fn json(stdout: &str) -> serde_json::Value {
    super::json_report(stdout)
}
