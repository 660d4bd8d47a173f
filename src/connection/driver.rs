//! The driver: the only code that touches the browser for the connection owner. It runs the
//! machine's commands (one WebSocket, one timer, the HTTP calls) and feeds what happens back
//! as inputs. Dropping it (or [`Driver::shut_down`]) closes the socket and cancels the timer.
//!
//! Each socket's closures live beside it in [`LiveSocket`] and are detached before it closes, so
//! no event of a closed socket ever reaches the machine and nothing is `forget()`-ed. The page's
//! `visibilitychange`, `online` and `offline` listeners live in the driver and go with it.

use super::machine::{Command, Epoch, Input, Machine, Notice, SocketId, View};
use super::tab_lock::{self, Answer, Held};
use super::telemetry::Telemetry;
use crate::json::BrowserJson;
use crate::{api, session::SessionStore};
use gloo_events::EventListener;
use gloo_timers::callback::Timeout;
use protocol::frames::{self, ConnectAuth};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use wasm_bindgen::{JsCast, closure::Closure};
use web_sys::{CloseEvent, Event, MessageEvent, WebSocket};

/// What the driver tells its owner.
pub struct Outputs {
    pub on_view: Box<dyn Fn(View)>,
    pub on_notice: Box<dyn Fn(Notice)>,
    pub on_telemetry: Box<dyn Fn(&Telemetry)>,
}

/// The cross-tab lock as this tab has it: the claim it waits for, and the lock it holds.
#[derive(Default)]
struct TabState {
    wanted: Option<Epoch>,
    held: Option<(Epoch, Held)>,
}

pub struct Driver {
    machine: RefCell<Machine>,
    socket: RefCell<Option<LiveSocket>>,
    timer: RefCell<Option<Timeout>>,
    /// Inputs raised while a command runs wait here: the machine is never re-entered.
    queue: RefCell<VecDeque<Input>>,
    busy: Cell<bool>,
    session: SessionStore,
    outputs: Outputs,
    telemetry: RefCell<Telemetry>,
    tab: RefCell<TabState>,
    page_listeners: RefCell<Vec<EventListener>>,
    me: Weak<Driver>,
}

struct LiveSocket {
    id: SocketId,
    ws: WebSocket,
    _on_open: Closure<dyn FnMut(Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(Event)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl LiveSocket {
    fn close(self, code: u16) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onerror(None);
        self.ws.set_onclose(None);
        // Closing an already-closed socket is harmless; a bad code is impossible here.
        let _ = self.ws.close_with_code(code);
    }
}

/// Milliseconds on the page's monotonic clock.
pub fn now() -> u64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now() as u64)
        .unwrap_or(0)
}

impl Driver {
    pub fn new(machine: Machine, session: SessionStore, outputs: Outputs) -> Rc<Driver> {
        let driver = Rc::new_cyclic(|me| Driver {
            machine: RefCell::new(machine),
            socket: RefCell::new(None),
            timer: RefCell::new(None),
            queue: RefCell::new(VecDeque::new()),
            busy: Cell::new(false),
            session,
            outputs,
            telemetry: RefCell::new(Telemetry::default()),
            tab: RefCell::new(TabState::default()),
            page_listeners: RefCell::new(Vec::new()),
            me: me.clone(),
        });
        driver.listen_to_the_page();
        driver
    }

    /// `visibilitychange`, `online` and `offline` become inputs; a page that starts hidden says so.
    fn listen_to_the_page(&self) {
        let (Some(window), Some(document)) = (
            web_sys::window(),
            web_sys::window().and_then(|w| w.document()),
        ) else {
            return;
        };
        let visibility = |document: &web_sys::Document| match document.visibility_state() {
            web_sys::VisibilityState::Hidden => Input::PageHidden,
            _ => Input::PageVisible,
        };
        if visibility(&document) == Input::PageHidden {
            self.dispatch(Input::PageHidden);
        }
        let on_visibility = self.feed({
            let document = document.clone();
            move |()| Some(visibility(&document))
        });
        let on_online = self.feed(|()| Some(Input::Online));
        let on_offline = self.feed(|()| Some(Input::Offline));
        *self.page_listeners.borrow_mut() = vec![
            EventListener::new(&document, "visibilitychange", move |_| on_visibility(())),
            EventListener::new(&window, "online", move |_| on_online(())),
            EventListener::new(&window, "offline", move |_| on_offline(())),
        ];
    }

    /// Feeds an input to the machine and runs its commands.
    pub fn dispatch(&self, input: Input) {
        self.queue.borrow_mut().push_back(input);
        if self.busy.replace(true) {
            return;
        }
        loop {
            let next = self.queue.borrow_mut().pop_front();
            let Some(input) = next else { break };
            let at = now();
            self.telemetry.borrow_mut().input(&input, at);
            let commands = self.machine.borrow_mut().handle(input, at);
            self.telemetry.borrow_mut().commands(&commands, at);
            for command in commands {
                self.run(command);
            }
            (self.outputs.on_view)(self.machine.borrow().view());
            (self.outputs.on_telemetry)(&self.telemetry.borrow());
        }
        self.busy.set(false);
    }

    /// Closes the socket and cancels the timer (unmount, page leave).
    pub fn shut_down(&self) {
        self.dispatch(Input::HideQr);
        if let Some(socket) = self.socket.borrow_mut().take() {
            socket.close(1000);
        }
        self.timer.borrow_mut().take();
        *self.tab.borrow_mut() = TabState::default();
        self.page_listeners.borrow_mut().clear();
    }

    /// A callback that dispatches into this driver while it lives.
    fn feed<T: 'static>(
        &self,
        to_input: impl Fn(T) -> Option<Input> + 'static,
    ) -> impl Fn(T) + 'static {
        let me = self.me.clone();
        move |value| {
            if let (Some(driver), Some(input)) = (me.upgrade(), to_input(value)) {
                driver.dispatch(input);
            }
        }
    }

    fn run(&self, command: Command) {
        match command {
            Command::ArmTimer { at } => {
                let delay = at.saturating_sub(now()).min(u32::MAX as u64) as u32;
                let fire = self.feed(|()| Some(Input::TimerFired));
                *self.timer.borrow_mut() = Some(Timeout::new(delay, move || fire(())));
            }
            Command::CancelTimer => {
                self.timer.borrow_mut().take();
            }
            Command::FetchQr { bot, epoch } => {
                let done = self.feed(move |r: Result<_, api::ApiError>| {
                    Some(match r {
                        Ok(qr) => Input::QrFetched { epoch, qr },
                        Err(e) => Input::QrFetchFailed {
                            epoch,
                            failure: e.to_http_failure(),
                        },
                    })
                });
                let session = self.session.clone();
                leptos::task::spawn_local(async move { done(api::start_qr(&session, &bot).await) });
            }
            Command::RefreshSession { epoch } => {
                let done = self.feed(move |r: Result<String, api::ApiError>| {
                    Some(session_answer(epoch, r.map(drop)))
                });
                let session = self.session.clone();
                leptos::task::spawn_local(async move { done(session.refresh_current().await) });
            }
            Command::NewSession { epoch } => {
                let done = self.feed(move |r: Result<api::Session, api::ApiError>| {
                    Some(session_answer(epoch, r.map(drop)))
                });
                let session = self.session.clone();
                leptos::task::spawn_local(async move { done(session.sign_in().await) });
            }
            Command::FetchBot { bot, epoch } => {
                let done = self.feed(move |r: Result<api::Bot, api::ApiError>| {
                    Some(match r {
                        Ok(bot) => Input::BotFetched {
                            epoch,
                            status: bot.status,
                            pairing: bot.pairing,
                        },
                        Err(e) => Input::BotFetchFailed {
                            epoch,
                            failure: e.to_http_failure(),
                        },
                    })
                });
                let session = self.session.clone();
                leptos::task::spawn_local(async move { done(api::get_bot(&session, &bot).await) });
            }
            Command::ClaimTab { epoch, steal } => {
                {
                    let mut tab = self.tab.borrow_mut();
                    tab.held = None;
                    tab.wanted = Some(epoch);
                }
                let me = self.me.clone();
                tab_lock::claim(steal, move |answer| {
                    if let Some(driver) = me.upgrade() {
                        driver.on_tab_answer(epoch, answer);
                    }
                });
            }
            Command::ReleaseTab => *self.tab.borrow_mut() = TabState::default(),
            Command::Transition { from, to, why } => web_sys::console::log_1(
                &format!("[botlink] {} → {} ({why})", from.as_str(), to.as_str()).into(),
            ),
            Command::Open { socket } => self.open(socket),
            Command::SendConnect { socket, bot } => {
                let frame = self.session.current().map(|s| {
                    frames::encode_connect_with(
                        &BrowserJson,
                        &ConnectAuth {
                            token: s.token,
                            user_id: s.user_id,
                            bot_id: Some(bot),
                        },
                    )
                });
                // No session stored: send an empty auth and let the server refuse it as unauthorized.
                self.send(socket, &frame.unwrap_or_else(|| "40{}".into()));
            }
            Command::Send { socket, text } => self.send(socket, &text),
            Command::Close { socket, code } => {
                let live = self.socket.borrow_mut().take_if(|s| s.id == socket);
                if let Some(live) = live {
                    live.close(code);
                }
            }
            Command::Notify(notice) => (self.outputs.on_notice)(notice),
            Command::Log(line) => web_sys::console::log_1(&format!("[botlink] {line}").into()),
            // For the telemetry, which reads every command before this runs; nothing to do here.
            Command::Heard(_) => {}
        }
    }

    /// What the browser said about the lock claimed with `epoch`.
    fn on_tab_answer(&self, epoch: Epoch, answer: Answer) {
        let input = match answer {
            Answer::Granted(held) => {
                let mut tab = self.tab.borrow_mut();
                if tab.wanted != Some(epoch) {
                    // A claim given up meanwhile (the QR was hidden): let go at once.
                    return;
                }
                tab.held = Some((epoch, held));
                Input::TabClaimed { epoch }
            }
            Answer::Busy => Input::TabBusy { epoch },
            Answer::Lost => {
                let mut tab = self.tab.borrow_mut();
                if tab.held.as_ref().is_none_or(|(e, _)| *e != epoch) {
                    return;
                }
                // Stolen: the browser let go already; dropping the handle is harmless.
                tab.held = None;
                tab.wanted = None;
                Input::TabLost { epoch }
            }
        };
        self.dispatch(input);
    }

    fn send(&self, socket: SocketId, text: &str) {
        if let Some(live) = self.socket.borrow().as_ref().filter(|s| s.id == socket) {
            // A send on a closing socket fails; its close event follows and is handled there.
            let _ = live.ws.send_with_str(text);
        }
    }

    /// The one place in the app that constructs a WebSocket.
    fn open(&self, id: SocketId) {
        if let Some(old) = self.socket.borrow_mut().take() {
            // The machine closes before it opens; this only guards the invariant.
            old.close(1000);
        }
        let ws = match WebSocket::new(&crate::http::socket_url()) {
            Ok(ws) => ws,
            Err(_) => {
                self.queue.borrow_mut().push_back(Input::SocketClosed {
                    socket: id,
                    code: 1006,
                });
                return;
            }
        };
        let on_open = Closure::<dyn FnMut(Event)>::new(
            self.feed(move |_: Event| Some(Input::SocketOpened { socket: id })),
        );
        let on_message =
            Closure::<dyn FnMut(MessageEvent)>::new(self.feed(move |e: MessageEvent| {
                // Binary frames are not part of the contract: ignored.
                e.data()
                    .as_string()
                    .map(|text| Input::SocketMessage { socket: id, text })
            }));
        let on_error = Closure::<dyn FnMut(Event)>::new(
            self.feed(move |_: Event| Some(Input::SocketError { socket: id })),
        );
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(self.feed(move |e: CloseEvent| {
            Some(Input::SocketClosed {
                socket: id,
                code: e.code(),
            })
        }));
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        *self.socket.borrow_mut() = Some(LiveSocket {
            id,
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_error: on_error,
            _on_close: on_close,
        });
    }
}

fn session_answer(epoch: super::machine::Epoch, r: Result<(), api::ApiError>) -> Input {
    match r {
        Ok(()) => Input::SessionReady { epoch },
        Err(e) => Input::SessionFailed {
            epoch,
            failure: e.to_http_failure(),
        },
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(socket) = self.socket.get_mut().take() {
            socket.close(1000);
        }
    }
}
