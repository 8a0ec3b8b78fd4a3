package softphone_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/groupbridge/groupbridge/internal/softphone"
	"github.com/groupbridge/groupbridge/media/tone"
)

// A member calls in, enters a PIN, says something and listens to the room.
func ExampleDial() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := softphone.Dial(ctx, softphone.Config{Server: "127.0.0.1:5060", Dialed: "1001", Caller: "+15551234567"})
	var rejected *softphone.StatusError
	if errors.As(err, &rejected) {
		fmt.Println("bridge answered", rejected.StatusCode)
		return
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Hangup(ctx)

	if err := p.SendDigits(ctx, "4821#", softphone.DigitRFC4733); err != nil {
		fmt.Println(err)
		return
	}
	p.Media().SendTone(1000, -20)
	since := time.Now()
	time.Sleep(2 * time.Second)
	fmt.Printf("heard 440 Hz at %.0f dBFS\n", tone.LevelDBFS(p.Media().Received(since), 440))
}

// A load tool shares one Agent between many phones.
func ExampleNewAgent() {
	agent, err := softphone.NewAgent(softphone.AgentConfig{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer agent.Close() // hangs up whatever is still up

	ctx := context.Background()
	for i := range 200 {
		p, err := softphone.Dial(ctx, softphone.Config{
			Server: "127.0.0.1:5060",
			Agent:  agent,
			Caller: fmt.Sprintf("+1555%07d", i),
			Keep:   -1, // no recording: statistics only
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		p.Media().SendTone(300+float64(i), -30)
	}
}
