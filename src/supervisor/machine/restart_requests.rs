//! `msvc restart SERVICE` as the machine handles it: rebuild (a binary), stop the
//! service's instances, start them again, and answer once they pass their health check.

use super::slot::Phase;
use super::{Action, Machine, Now, ReplyStatus, RequestId};
use crate::supervisor::plan::Program;

pub(super) struct PendingRestart {
    pub(super) service: String,
    pub(super) request: RequestId,
    /// Generations of the service's slots when the restart began; `None` while building.
    pub(super) generations: Option<Vec<(usize, u32)>>,
}

impl Machine {
    pub(super) fn restart_requested(&mut self, request: RequestId, service: String, now: Now) {
        if self.indices_of(&service).is_empty() {
            self.reply(
                request,
                ReplyStatus::Error,
                format!("`{service}` is not running in this `msvc up`"),
            );
            return;
        }
        if self.shutting_down {
            self.reply(
                request,
                ReplyStatus::Error,
                "msvc up is stopping".to_string(),
            );
            return;
        }
        let building = self
            .pending
            .iter()
            .any(|p| p.service == service && p.generations.is_none());
        self.pending.push(PendingRestart {
            service: service.clone(),
            request,
            generations: None,
        });
        if building {
            return;
        }
        let is_binary = self
            .indices_of(&service)
            .iter()
            .any(|i| matches!(self.slots[*i].instance.program, Program::Binary(_)));
        if !is_binary {
            // Nothing to build: restart at once.
            self.built(&service, Ok(()), now);
            return;
        }
        let asking: Vec<RequestId> = self
            .pending
            .iter()
            .filter(|p| p.service == service)
            .map(|p| p.request)
            .collect();
        for request in asking {
            self.reply(
                request,
                ReplyStatus::Progress,
                format!("building {service}"),
            );
        }
        self.say(
            "building",
            "Building",
            Some(&service),
            format!("{service} (msvc restart)"),
        );
        self.out.push(Action::Build { service });
    }

    pub(super) fn built(&mut self, service: &str, result: Result<(), String>, now: Now) {
        if let Err(message) = result {
            self.say(
                "failed",
                "Failed",
                Some(service),
                format!("to rebuild {service}; it keeps running as it was"),
            );
            let (refused, kept) = std::mem::take(&mut self.pending)
                .into_iter()
                .partition(|p| p.service == service && p.generations.is_none());
            self.pending = kept;
            for p in refused {
                self.reply(p.request, ReplyStatus::Error, message.clone());
            }
            return;
        }
        if self.shutting_down {
            return;
        }
        let indices = self.indices_of(service);
        let generations: Vec<(usize, u32)> = indices
            .iter()
            .map(|i| (*i, self.slots[*i].generation))
            .collect();
        let mut restarting = Vec::new();
        for p in &mut self.pending {
            if p.service == service && p.generations.is_none() {
                p.generations = Some(generations.clone());
                restarting.push(p.request);
            }
        }
        for request in restarting {
            self.reply(
                request,
                ReplyStatus::Progress,
                format!("restarting {service}"),
            );
        }
        for i in indices {
            self.slots[i].history.clear();
            match self.slots[i].phase {
                Phase::Starting | Phase::Running => {
                    self.slots[i].start_after_stop = true;
                    self.begin_stop(i, now);
                }
                Phase::Stopping => self.slots[i].start_after_stop = true,
                Phase::Backoff
                | Phase::Failed
                | Phase::Exited
                | Phase::Stopped
                | Phase::Waiting => {
                    self.slots[i].restarts += 1;
                    self.spawn(i, now);
                }
            }
        }
    }

    pub(super) fn answer_restarts(&mut self) {
        let mut answers = Vec::new();
        let slots = &self.slots;
        self.pending.retain(|p| {
            let Some(generations) = &p.generations else {
                return true;
            };
            let renewed = generations
                .iter()
                .all(|(i, g)| slots[*i].generation > *g && slots[*i].phase == Phase::Running);
            let failed = generations.iter().any(|(i, _)| slots[*i].phase.is_over());
            if renewed {
                let pids: Vec<String> = generations
                    .iter()
                    .filter_map(|(i, _)| slots[*i].pid.map(|p| p.to_string()))
                    .collect();
                answers.push((
                    p.request,
                    ReplyStatus::Ok,
                    format!(
                        "{} is running again (pid {}) and passes its health check",
                        p.service,
                        pids.join(", ")
                    ),
                ));
                false
            } else if failed {
                answers.push((
                    p.request,
                    ReplyStatus::Error,
                    format!(
                        "{} did not start again; see `msvc logs {}`",
                        p.service, p.service
                    ),
                ));
                false
            } else {
                true
            }
        });
        for (request, status, message) in answers {
            self.reply(request, status, message);
        }
    }
}
