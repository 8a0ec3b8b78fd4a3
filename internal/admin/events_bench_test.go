package admin

import (
	"fmt"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/conference"
)

// BenchmarkConsoleView is the console poller's own work each 200 ms while
// a console is open: the JSON of every live room's view (the rooms build
// their views on their ticks; BenchmarkRoomView measures that part).
func BenchmarkConsoleView(b *testing.B) {
	for _, size := range []struct{ rooms, seats int }{{10, 10}, {100, 10}, {300, 10}} {
		b.Run(fmt.Sprintf("rooms=%d/seats=%d", size.rooms, size.seats), func(b *testing.B) {
			views := make([]conference.RoomView, size.rooms)
			start := time.Date(2026, 12, 6, 19, 0, 0, 0, time.UTC)
			for i := range views {
				v := conference.RoomView{Group: fmt.Sprintf("Group %d", i), Started: start}
				for s := range size.seats {
					v.Seats = append(v.Seats, conference.SeatView{Seat: s + 1, Role: "member", Placement: "room", Talking: s == 0})
				}
				views[i] = v
			}
			b.ReportAllocs()
			for b.Loop() {
				_ = consoleView(views)
			}
		})
	}
}
