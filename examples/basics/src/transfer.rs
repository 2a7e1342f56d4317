//! A transfer between two accounts, and the saga (process manager) that carries it out.
//!
//! A transfer is requested on a stream of its own. The saga then withdraws from the
//! source account and deposits into the target; if a command is refused (no funds, the
//! target is not open), it compensates: what was withdrawn is deposited back. Every
//! command it issues has an idempotency key derived from the event it reacted to, so a
//! re-dispatch after a crash lands once.

use serde::{Deserialize, Serialize};
use tessera::core::process::Status;
use tessera::prelude::*;

use crate::account::{Account, AccountCommand};

/// Asks for `amount` cents to move between two accounts. The id is also in the
/// transfer's stream name, but the saga correlates by what the events carry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestTransfer {
    pub id: String,
    pub from: String,
    pub to: String,
    pub amount: i64,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum TransferEvent {
    #[serde(rename = "TransferRequested")]
    Requested(RequestTransfer),
}
impl DomainEvent for TransferEvent {}

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("transfer already requested")]
    AlreadyRequested,
}

/// A transfer request: it records that it was asked for, once.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Transfer {
    requested: bool,
}

impl Aggregate for Transfer {
    const CATEGORY: &'static str = "transfer";
    type Command = RequestTransfer;
    type Event = TransferEvent;
    type Error = TransferError;
    type Services = ();

    fn apply(&mut self, _: &TransferEvent) {
        self.requested = true;
    }

    fn decide(
        &self,
        request: &RequestTransfer,
        _: &(),
    ) -> Result<Vec<TransferEvent>, TransferError> {
        if self.requested {
            return Err(TransferError::AlreadyRequested);
        }
        Ok(vec![TransferEvent::Requested(request.clone())])
    }
}

/// The events the saga reads, by their stored type names, from the `transfer` and
/// `account` categories (other types, such as `AccountOpened`, are skipped). Fields it
/// does not need (an amount) are left out.
#[derive(Debug, Serialize, Deserialize)]
pub enum SagaEvent {
    #[serde(rename = "TransferRequested")]
    Requested(RequestTransfer),
    #[serde(rename = "Withdrawn")]
    Withdrawn { transfer: Option<String> },
    #[serde(rename = "Deposited")]
    Deposited { transfer: Option<String> },
}
impl DomainEvent for SagaEvent {}

/// A command for one account, issued by the saga.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToAccount {
    pub account: String,
    pub command: AccountCommand,
}

impl ToAccount {
    fn withdraw(account: &str, t: &RequestTransfer) -> Self {
        let (amount, transfer) = (t.amount, Some(t.id.clone()));
        let command = AccountCommand::Withdraw { amount, transfer };
        let account = account.to_owned();
        Self { account, command }
    }

    fn deposit(account: &str, t: &RequestTransfer) -> Self {
        let (amount, transfer) = (t.amount, Some(t.id.clone()));
        let command = AccountCommand::Deposit { amount, transfer };
        let account = account.to_owned();
        Self { account, command }
    }
}

/// The transfer saga: its state is the request it started with.
pub struct TransferSaga;

impl ProcessManager for TransferSaga {
    const NAME: &'static str = "transfer";
    type Event = SagaEvent;
    type State = RequestTransfer;
    type Command = ToAccount;
    type Timeout = (); // it schedules no deadline

    fn filter(&self) -> EventFilter {
        EventFilter::categories(["transfer", "account"])
    }

    fn correlate(&self, event: &SagaEvent) -> Correlation {
        match event {
            SagaEvent::Requested(request) => Correlation::Start(request.id.as_str().into()),
            SagaEvent::Withdrawn { transfer: Some(id) }
            | SagaEvent::Deposited { transfer: Some(id) } => Correlation::Continue(id.into()),
            _ => Correlation::Ignore, // a deposit or withdrawal of no transfer
        }
    }

    fn react(&self, saga: &Instance<Self>, input: Input<'_, Self>) -> Reaction<Self> {
        let transfer = &saga.state;
        match input {
            Input::Event(SagaEvent::Requested(request)) => Reaction::new()
                .state(request.clone())
                .issue(ToAccount::withdraw(&request.from, request)),
            // The withdrawal is a completed step; depositing it back undoes it.
            Input::Event(SagaEvent::Withdrawn { .. }) => Reaction::new()
                .completed_step(
                    "withdraw",
                    Some(ToAccount::deposit(&transfer.from, transfer)),
                )
                .issue(ToAccount::deposit(&transfer.to, transfer)),
            Input::Event(SagaEvent::Deposited { .. }) if saga.status == Status::Pending => {
                Reaction::new().complete()
            }
            // The deposit back of a compensation: nothing more to do.
            Input::Event(SagaEvent::Deposited { .. }) | Input::Timeout(()) => Reaction::new(),
            // A command was refused: undo the completed steps, newest first.
            Input::CommandFailed { reason, .. } => Reaction::new().compensate(reason),
        }
    }
}

/// Sends the saga's commands to the accounts' command handler.
pub struct ToAccounts<S>(pub CommandHandler<Account, S>);

#[async_trait]
impl<S: EventStore> Dispatcher<ToAccount> for ToAccounts<S> {
    async fn dispatch(&self, issued: &Issued<ToAccount>) -> Result<(), DispatchError> {
        let ToAccount { account, command } = &issued.command;
        // `issued.options()` carries the command's idempotency key.
        match self.0.handle_with(account, command, issued.options()).await {
            Ok(_) => Ok(()),
            Err(CommandError::Rejected(refusal)) => Err(DispatchError::rejected(refusal)),
            Err(error) => Err(DispatchError::transient(error)),
        }
    }
}
