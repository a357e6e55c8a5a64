//! Issue 6 end to end: every fixture compiled on an insecure test ring, encrypted, run by the encrypted executor with evaluation keys only, decrypted, and compared with transformers' `hidden.sigmoid.noaq` (max abs error ≤ 1e-3 × max |reference|) and `logits.sigmoid.noaq` (the same top-1 token at every position).
//!
//! Also: the encrypted run against the plaintext executor on the same plan, op by op for the
//! smallest fixture (the observer hook a client-side debugger uses), and the clear errors for
//! foreign keys and missing bootstrapping keys. Every fixture's plan bootstraps (6 to 12 times). `cargo test -p ensi-tests --test encrypted --
//! --nocapture` prints the per-fixture lines and profiles.

use std::time::Instant;

use anyhow::{Context, ensure};
use ensi_checkpoint::Checkpoint;
use ensi_compiler::{CompileOptions, Compiled, compile};
use ensi_runtime::ckks::scheme::{Decryptor, Encryptor, Evaluator, KeyGenerator, Params};
use ensi_runtime::exec::encrypted::client;
use ensi_runtime::exec::{self, Activation, BoundWeights, EncryptedExecutor};
use ensi_runtime::plan::{self, Plan, PlanInfo};
use ensi_tests::{Deviation, FIXTURES, Reference, argmax_rows, fixtures_dir};

/// The bound on `max |error| / max |reference|` for the hidden state.
const TOLERANCE: f64 = 1e-3;

/// A fixture compiled and bound, with its client and server material.
struct Setup {
    checkpoint: Checkpoint,
    reference: Reference,
    plan: Plan,
    info: PlanInfo,
    weights: BoundWeights,
    params: Params,
    predicted: f64,
}

fn setup(fixture: &str) -> anyhow::Result<Setup> {
    let checkpoint = Checkpoint::open(fixtures_dir().join(fixture))?;
    let reference = Reference::load(fixture)?;
    let tokens = reference.input_ids().to_vec();
    let mut options = CompileOptions::insecure_test(tokens.len());
    options.approx.extra_inputs = vec![tokens.clone()];
    let Compiled { plan, report } = compile(&checkpoint, fixture, &options)?;
    let info = plan::check::check(&plan)?;
    let weights = BoundWeights::bind(&plan, &checkpoint)?;
    let params = client::plan_params(&plan)?;
    Ok(Setup {
        checkpoint,
        reference,
        plan,
        info,
        weights,
        params,
        predicted: report.summary.predicted_error,
    })
}

/// Keygen, encrypt, run, decrypt: the hidden state and the run's profile line.
fn encrypted_hidden(s: &Setup, seed: u8) -> anyhow::Result<(Activation, String, f64)> {
    let mut keygen = KeyGenerator::from_seed(&s.params, [seed; 32])?;
    let keys = client::evaluation_keys(&s.plan, &mut keygen)?;
    let tokens = s.reference.input_ids();
    let embedded = exec::embed_tokens(s.checkpoint.embedding(), tokens)?;
    let mut encryptor =
        Encryptor::with_secret_key(&s.params, keygen.secret_key())?.with_seed([seed ^ 1; 32]);
    let inputs = client::encrypt_inputs(&s.plan, &mut encryptor, &[embedded])?;

    let eval = Evaluator::new(&s.params, &keys)?;
    let executor = EncryptedExecutor::new(&s.plan, &s.info, &s.weights, &eval)?;
    let start = Instant::now();
    let run = executor.run(inputs)?;
    let seconds = start.elapsed().as_secs_f64();

    let decryptor = Decryptor::new(&s.params, keygen.secret_key())?;
    let outputs = client::decrypt_outputs(&s.plan, &decryptor, &run.outputs)?;
    let hidden = outputs
        .into_iter()
        .find(|o| o.name == "hidden")
        .context("no hidden output")?
        .value;
    Ok((hidden, run.profile.to_string(), seconds))
}

fn check_fixture(fixture: &str) -> anyhow::Result<String> {
    let start = Instant::now();
    let s = setup(fixture)?;
    let (hidden, profile, seconds) = encrypted_hidden(&s, 11)?;
    let expected = s.reference.tensor("hidden.sigmoid.noaq")?;
    let actual = Deviation::between(hidden.values(), &expected.values)?;
    ensure!(
        actual.relative() <= TOLERANCE,
        "{fixture}: encrypted hidden state off by {:e} of max |reference| (bound {TOLERANCE:e})",
        actual.relative()
    );
    let (logits, vocab) = exec::head_logits(s.checkpoint.lm_head(), &hidden);
    let reference_logits = s.reference.tensor("logits.sigmoid.noaq")?;
    ensure!(
        argmax_rows(&logits, vocab) == argmax_rows(&reference_logits.values, vocab),
        "{fixture}: top-1 tokens differ from the reference"
    );
    eprintln!("{fixture}:\n{profile}");
    Ok(format!(
        "{fixture:<15} N=2^{} L={} error {:.3e} (max abs {:.3e}, predicted {:.3e})  top-1 ok  eval {seconds:.2} s, total {:.2} s",
        s.params.log_n(),
        s.params.max_level(),
        actual.relative(),
        actual.max_abs_error,
        s.predicted,
        start.elapsed().as_secs_f64()
    ))
}

#[test]
fn the_smallest_fixture_encrypted_matches_the_reference() -> anyhow::Result<()> {
    let line = check_fixture(FIXTURES[0])?;
    eprintln!("{line}");
    Ok(())
}

/// The larger fixtures, each with 12 bootstraps in its path (N = 2^11 insecure ring, 30
/// levels): about 1.5–3 minutes each in the dev profile on two cores.
#[test]
fn every_other_fixture_encrypted_matches_the_reference() -> anyhow::Result<()> {
    for fixture in &FIXTURES[1..] {
        eprintln!("{}", check_fixture(fixture)?);
    }
    Ok(())
}

#[test]
#[ignore = "diagnostic: prints every op's encrypted error on the smallest fixture"]
fn op_by_op_errors_of_the_smallest_fixture() -> anyhow::Result<()> {
    let s = setup(FIXTURES[0])?;
    let mut keygen = KeyGenerator::from_seed(&s.params, [5; 32])?;
    let keys = client::evaluation_keys(&s.plan, &mut keygen)?;
    let embedded = exec::embed_tokens(s.checkpoint.embedding(), s.reference.input_ids())?;
    let plain = exec::encode_input(&s.plan.inputs[0], &embedded)?;
    let mut encryptor =
        Encryptor::with_secret_key(&s.params, keygen.secret_key())?.with_seed([6; 32]);
    let inputs = client::encrypt_inputs(&s.plan, &mut encryptor, &[embedded])?;
    let eval = Evaluator::new(&s.params, &keys)?;
    let executor = EncryptedExecutor::new(&s.plan, &s.info, &s.weights, &eval)?;
    let decryptor = Decryptor::new(&s.params, keygen.secret_key())?;
    let check = exec::encrypted::debug::check_every_op(
        &s.plan,
        &s.info,
        &s.weights,
        &executor,
        &decryptor,
        &[plain],
        inputs,
        1e-4,
    )?;
    for e in &check.errors {
        eprintln!("{e}");
    }
    eprintln!("first above: {:?}", check.first_above);
    Ok(())
}

/// Keys without the bootstrappers' keys, and keys lacking the plan's Galois elements, are
/// refused before anything runs.
#[test]
fn missing_bootstrap_keys_and_foreign_keys_are_clear_errors() -> anyhow::Result<()> {
    let s = setup(FIXTURES[0])?;
    ensure!(s.plan.needs_bootstrapping, "the fixture plan bootstraps");
    // The plan's own keys only: what a client that ignored the bootstraps would send.
    let mut without = s.plan.clone();
    without.needs_bootstrapping = false;
    let mut keygen = KeyGenerator::from_seed(&s.params, [9; 32])?;
    let keys = client::evaluation_keys(&without, &mut keygen)?;
    let eval = Evaluator::new(&s.params, &keys)?;
    let error = EncryptedExecutor::new(&s.plan, &s.info, &s.weights, &eval)
        .err()
        .context("keys without the bootstrapping keys accepted")?;
    assert!(
        error
            .to_string()
            .starts_with("the evaluation keys lack bootstrapping keys"),
        "{error}"
    );

    // Keys lacking the plan's Galois elements.
    let empty = ensi_runtime::ckks::scheme::EvaluationKeys::empty(&s.params);
    let eval = Evaluator::new(&s.params, &empty)?;
    let error = EncryptedExecutor::new(&s.plan, &s.info, &s.weights, &eval)
        .err()
        .context("keys accepted")?;
    assert!(
        error
            .to_string()
            .starts_with("the evaluation keys lack the relinearization key and"),
        "{error}"
    );
    Ok(())
}
