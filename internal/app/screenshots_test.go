package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/groupbridge/groupbridge/config"
	"github.com/groupbridge/groupbridge/internal/attendance"
	"github.com/groupbridge/groupbridge/internal/attendance/store"
	"github.com/groupbridge/groupbridge/internal/softphone"
)

// screenshotsEnv names the directory the README's console pictures are
// written to (`make screenshots`); without it the test skips.
const screenshotsEnv = "GROUPBRIDGE_SCREENSHOTS"

// screenshotGroups are two groups as a coordinator might name them.
const screenshotGroups = `
  - name: Bereavement circle
    member_pin: "1234"
    facilitator_pin: "654321"
    led_by: peer
  - name: Thursday phone meeting
    member_pin: "2345"
    facilitator_pin: "765432"
    led_by: peer
`

// The console's pictures in the README: two live rooms (a facilitator,
// one caller talking, one with a hand raised, one moved to waiting by the
// console's own button, one muted; a locked room of two) and the
// attendance section over a few weeks of sessions.
func TestConsoleScreenshots(t *testing.T) {
	dir := os.Getenv(screenshotsEnv)
	if dir == "" {
		t.Skipf("set %s to a directory (make screenshots) to write the console's pictures", screenshotsEnv)
	}
	if !filepath.IsAbs(dir) {
		t.Fatalf("%s=%s: give an absolute directory (tests run in their package's directory)", screenshotsEnv, dir)
	}
	y := testYAML("", screenshotGroups)
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	seedSessions(t, cfg.Attendance.Path, time.Now())
	a, logs := startApp(t, y)
	c := newChromium(t, a.AdminAddr())

	// Callers join in order; the joins are counted across both groups.
	pins := []struct{ group, pin string }{
		{"Bereavement circle", "654321"},
		{"Bereavement circle", "1234"},
		{"Bereavement circle", "1234"},
		{"Bereavement circle", "1234"},
		{"Bereavement circle", "1234"},
		{"Thursday phone meeting", "765432"},
		{"Thursday phone meeting", "2345"},
	}
	phones := make([]*softphone.Phone, len(pins))
	for i, p := range pins {
		phones[i] = dial(t, a, softphone.Config{Caller: fmt.Sprintf("+1555%07d", 1500001+i)})
		enter(t, logs, phones[i], p.pin, softphone.DigitRFC4733, i+1)
	}
	for _, p := range phones {
		p.Media().SendSilence()
	}
	time.Sleep(2 * time.Second) // the join prompts end
	c.open("/")
	c.waitJS(pageWait, "both rooms", `document.querySelectorAll("article.room").length === 2`, q("#rooms")+`?.outerHTML`)

	const circle, thursday = "Bereavement circle", "Thursday phone meeting"
	room := func(g string) string { return `article.room[data-group=` + js(g) + `]` }
	keys(t, phones[2], "*9") // caller 3 raises a hand
	keys(t, phones[4], "*6") // caller 5 mutes itself
	c.do(pageWait, "moving caller 4 to waiting",
		chromedp.Click(chromedp.CSS(room(circle)+` button[data-action="wait"][data-seat="4"]`), chromedp.NodeVisible))
	c.do(pageWait, "locking the second room",
		chromedp.Click(chromedp.CSS(room(thursday)+` button[data-action="lock"]`), chromedp.NodeVisible))
	phones[1].Media().SendTone(300, -18) // caller 2 talks
	c.waitJS(pageWait, "the scene", q(seatSel(circle, 2))+`?.dataset.talking === "true" && `+
		q(seatSel(circle, 3))+`?.dataset.hand === "true" && `+
		q(seatSel(circle, 4))+`?.dataset.placement === "waiting" && `+
		q(seatSel(circle, 5))+`?.dataset.muted === "true" && `+
		q(room(thursday))+`?.dataset.locked === "true"`, q("#rooms")+`?.outerHTML`)
	time.Sleep(300 * time.Millisecond) // the announcements' live region settles
	writePNG(t, filepath.Join(dir, "console-live.png"), band(t, c, "body > header", "#rooms"))

	c.waitJS(pageWait, "the charts", `[...document.querySelectorAll("#attendance img")].every(i => i.complete && i.naturalWidth > 0)`, q("#attendance")+`?.outerHTML`)
	writePNG(t, filepath.Join(dir, "console-attendance.png"), band(t, c, "#attendance", "#attendance"))
}

// band is a PNG of the page's full width from the top of the element
// first matches to the bottom of the one last matches, with a margin, as
// far down the page as that goes.
func band(t *testing.T, c *chromium, first, last string) []byte {
	t.Helper()
	type span struct{ Top, Bottom, Width float64 }
	sp := evalJS[span](c, `(() => {
		const a = `+q(first)+`.getBoundingClientRect(), b = `+q(last)+`.getBoundingClientRect();
		return {Top: Math.max(0, a.top + scrollY - 16), Bottom: b.bottom + scrollY + 16, Width: document.documentElement.clientWidth};
	})()`)
	ctx, cancel := context.WithTimeout(c.ctx, pageWait)
	defer cancel()
	beyond := true
	r, err := chromedp.Call(ctx, page.CaptureScreenshot, page.CaptureScreenshotParams{
		Clip:                  &page.Viewport{X: 0, Y: sp.Top, Width: sp.Width, Height: sp.Bottom - sp.Top, Scale: 1},
		CaptureBeyondViewport: &beyond,
	})
	if err != nil {
		t.Fatalf("screenshot of %s to %s: %v", first, last, err)
	}
	return r.Data
}

// writePNG writes a screenshot and names it in the test's log.
func writePNG(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", path, len(b))
}

// seedSessions stores eight weeks of past sessions of both groups in the
// SQLite store at path: a weekly circle of four to nine people and a
// smaller meeting that some weeks had fewer than 3.
func seedSessions(t *testing.T, path string, now time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := store.Open(ctx, store.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w := st.NewWriter(store.WriterOptions{})
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.Local)
	monday := day.AddDate(0, 0, -(int(day.Weekday())+6)%7)
	n := 0
	add := func(group string, start time.Time, length time.Duration, people, peak int) {
		n++
		s := attendance.Session{
			ID: fmt.Sprintf("%032x", n), Group: group, Start: start, End: start.Add(length),
			Peak: peak, Distinct: people, Joins: people + n%3,
			FacilitatorTime: length, MemberTime: time.Duration(people-1) * length * 4 / 5,
			MedianStay: length * time.Duration(60+5*(n%5)) / 100, LongestStay: length,
		}
		s.TurnedAway[attendance.Locked] = n % 2
		w.Session(s)
	}
	// Tuesday evenings and Thursday noons of the eight weeks before this.
	for week := 8; week >= 1; week-- {
		mon := monday.AddDate(0, 0, -7*week)
		add("Bereavement circle", mon.AddDate(0, 0, 1).Add(19*time.Hour), 90*time.Minute, 4+(week*3)%6, 3+(week*3)%6)
		add("Thursday phone meeting", mon.AddDate(0, 0, 3).Add(12*time.Hour), 60*time.Minute, 2+week%3, 2+week%3)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
