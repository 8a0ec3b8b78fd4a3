package app

import (
	"slices"
	"testing"

	"github.com/groupbridge/groupbridge/config"
)

func TestRestartKeys(t *testing.T) {
	base := func() *config.Config {
		c := config.Default()
		c.Groups = []config.Group{config.DefaultGroup()}
		return c
	}
	tests := []struct {
		name   string
		change func(c *config.Config)
		want   []string
	}{
		{"nothing", func(*config.Config) {}, nil},
		{"groups only", func(c *config.Config) { c.Groups[0].Name = "other" }, nil},
		{"listen", func(c *config.Config) { c.SIP.Listen = []string{"udp:127.0.0.1:5062"} }, []string{"sip.listen"}},
		{"ports", func(c *config.Config) { c.RTP.PortMax = 30000 }, []string{"rtp.port_min/port_max"}},
		{"trusted", func(c *config.Config) { c.SIP.Trusted = nil }, []string{"sip.trusted"}},
		{"users", func(c *config.Config) { c.SIP.Users = []config.User{{Name: "a", Password: "longenough1"}} }, []string{"sip.users"}},
		{"register", func(c *config.Config) { c.SIP.Register = &config.Register{Registrar: "sip:192.0.2.1"} }, []string{"sip.register"}},
		{"admin", func(c *config.Config) { c.Admin.Listen = "" }, []string{"admin"}},
		{"admin hosts", func(c *config.Config) { c.Admin.Hosts = []string{"bridge.example.org"} }, []string{"admin"}},
		{"audio", func(c *config.Config) { c.Audio.MaxTalkers = 2 }, []string{"audio"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			next := base()
			tc.change(next)
			if got := restartKeys(base(), next); !slices.Equal(got, tc.want) {
				t.Fatalf("restartKeys = %v, want %v", got, tc.want)
			}
		})
	}
}
