package callflow

import (
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/guard"
	"github.com/groupbridge/groupbridge/internal/ivr"
	"github.com/groupbridge/groupbridge/internal/lobby"
	"github.com/groupbridge/groupbridge/internal/metrics"
	"github.com/groupbridge/groupbridge/media/prompt"
)

// runIVR drives the PIN state machine with the call's key presses, the
// prompts' completions and its timers. It returns the join action, or nil
// and the reason the call is to end ("" when the caller already hung up),
// and the caller's language: the one they chose, else the group's (of
// the PIN, or of the number dialled), else the default.
func (f *Flow) runIVR(c Call, entry *lobby.Entry, st *Settings, id string, who guard.Caller) (*ivr.Action, Reason, string) {
	// The number's budget: a group's own number, or "" for the shared
	// access number (any number no group claims), which reaches every
	// group. The caller is known if known to a group it can reach.
	dialedGroup := ""
	speak := st.Prompts // the language the caller hears
	if i := group.ByNumber(st.Groups, c.Dialed()); i >= 0 {
		dialedGroup = st.Groups[i].Name
		speak = st.Prompts.In(st.Groups[i].Language)
	}
	chosen := false
	entry.SetLanguage(speak.Language())
	var known []string
	for _, g := range st.Groups {
		if dialedGroup == "" || g.Name == dialedGroup {
			known = append(known, f.KnownKey(id, g.Name))
		}
	}
	now := f.cfg.Clock.Now
	gate := f.cfg.Budget.Gate(dialedGroup, now(), known...)
	defer gate.Close()
	m := ivr.New(ivr.Config{Groups: st.Groups, Dialed: c.Dialed(), Gate: gate, Languages: len(st.Languages)}) // ivr offers none on a group's number
	var join *ivr.Action
	var hangup Reason
	apply := func(acts []ivr.Action) {
		for i := range acts {
			act := acts[i]
			switch act.Kind {
			case ivr.ActPlay:
				var clips [][]int16
				for _, n := range act.Prompts {
					if clip, ok := speak.Clip(n); ok {
						clips = append(clips, clip, prompt.Pause(200*time.Millisecond))
					}
				}
				if act.Offer {
					clips = appendOffers(clips, speak, st.Languages)
				}
				entry.Play(clips...)
			case ivr.ActLanguage:
				speak, chosen = st.Prompts.In(st.Languages[act.Language]), true
				entry.SetLanguage(speak.Language())
			case ivr.ActStopPrompt:
				entry.Stop()
			case ivr.ActJoin:
				join = &act
			case ivr.ActHangup:
				hangup = Reason(act.Reason)
			}
		}
	}
	apply(m.Start(now()))
	tries := 0
	// failed records wrong PINs; it reports whether the caller is now
	// blocked for guessing.
	failed := func() bool {
		blocked := false
		for ; tries < m.Tries(); tries++ {
			// For "it never let me in": who, which try, which number;
			// never the digits typed.
			attrs := []any{"call", c.ID(), "caller", c.Label(), "try", tries + 1}
			if dialedGroup != "" {
				attrs = append(attrs, "group", dialedGroup)
			}
			f.cfg.Log.Info("wrong PIN", attrs...)
			blocked = f.countWrongPIN(who, dialedGroup, gate, now()) || blocked
		}
		return blocked
	}
	// One timer for the machine's deadlines, reset on each turn.
	deadline := f.cfg.Clock.NewTimer(time.Hour)
	defer deadline.Stop()
	lang := func() string {
		if join != nil && !chosen {
			return st.Prompts.In(st.Groups[join.Group].Language).Language()
		}
		return speak.Language()
	}
	for join == nil && hangup == "" && !m.Done() {
		if failed() {
			return nil, PINBlocked, lang()
		}
		// The machine's next deadline, or an hour: nothing to wait for
		// but the caller.
		wait := time.Hour
		if dl, ok := m.NextDeadline(); ok {
			wait = max(dl.Sub(now()), time.Millisecond)
		}
		deadline.Reset(wait)
		select {
		case d := <-c.Digits():
			apply(m.Digit(d, now()))
		case <-entry.Finished():
			apply(m.PromptDone(now()))
		case <-entry.Failed():
			// The lobby recovered a panic on this caller's path and no
			// longer serves it: end only this call.
			f.cfg.Log.Error("caller's prompt playback panicked, letting the caller go", "call", c.ID(),
				"panic", fault(entry.Fault()))
			return nil, InternalError, lang()
		case <-deadline.C():
			apply(m.Tick(now()))
		case <-c.Context().Done():
			return nil, "", lang()
		}
	}
	if failed() && join == nil {
		return nil, PINBlocked, lang()
	}
	if join != nil {
		return join, "", lang()
	}
	if hangup == "" {
		hangup = IVREnded
	}
	return nil, hangup, lang()
}

// appendOffers adds the welcome's language offers: for each offered
// language but the one spoken, in that language, "For English, press
// star" and its key, its position in languages.
func appendOffers(clips [][]int16, speak *prompt.Set, languages []string) [][]int16 {
	for i, l := range languages {
		set := speak.In(l)
		if set.Language() != l || l == speak.Language() {
			continue
		}
		if clip, ok := set.Clip(prompt.LanguageOffer); ok {
			clips = append(clips, clip)
			clips = append(clips, set.Number(i+1)...)
			clips = append(clips, prompt.Pause(200*time.Millisecond))
		}
	}
	return clips
}

// dialedGroup is the group whose own number c dialled, "" for the shared
// access number: the scope of the number's PIN budget.
func dialedGroup(st *Settings, c Call) string {
	if i := group.ByNumber(st.Groups, c.Dialed()); i >= 0 {
		return st.Groups[i].Name
	}
	return ""
}

// pinAlarm reports a PIN failure rate that crossed limits.pin_failure_alarm:
// many callers guessing a little each is still an attack. Each crossing
// is counted; the log gets at most one line a minute per scope. The group
// is named in the log (the operator's), never in the metrics.
func (f *Flow) pinAlarm(alarm guard.Alarm, group string) {
	level := f.cfg.Settings().PINFailureAlarm
	report := func(i int, scope string, rate int, attrs ...any) {
		f.cfg.Metrics.PINAlarm(scope == metrics.ScopeGroup)
		if !f.alarmLog[i].Allow(f.cfg.Clock.Now()) {
			return
		}
		f.cfg.Log.Warn("PIN failure rate high: possible guessing attack",
			append([]any{"scope", scope, "per_minute", rate, "limit", level}, attrs...)...)
	}
	if alarm.Bridge {
		report(0, metrics.ScopeBridge, alarm.BridgeRate)
	}
	if alarm.Group {
		report(1, metrics.ScopeGroup, alarm.GroupRate, "group", group)
	}
}

// underAttack logs that wrong PINs to a number (or bridge-wide) passed the
// budget: from now on PIN answers there wait their turn. It happens once
// per attack (an attack ends after ten quiet minutes).
func (f *Flow) underAttack(group string) {
	st := f.cfg.Settings()
	attrs := []any{"scope", metrics.ScopeShared}
	if group != "" {
		attrs = []any{"scope", metrics.ScopeGroup, "group", group}
	}
	attrs = append(attrs, "pin_budget", st.PINBudget, "pin_budget_bridge", st.PINBudgetBridge)
	f.cfg.Metrics.PINAttack(group != "")
	f.cfg.Log.Warn("PIN guessing: wrong PINs past the budget; PIN answers now wait their turn", attrs...)
}
