package softphone

import (
	"crypto/tls"
	"strconv"
	"testing"
)

// The agent's TLS listener completes a handshake, and a TLS call's Contact
// names it with transport=tls, so a bridge that opens its own connection
// for in-dialog requests finds the phone.
func TestAgentTLSListener(t *testing.T) {
	a, err := NewAgent(AgentConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	addr := a.SIPAddr("tls")
	if !addr.IsValid() || addr.Port() == 0 || addr == a.SIPAddr("tcp") {
		t.Fatalf("TLS listener at %v (TCP at %v)", addr, a.SIPAddr("tcp"))
	}
	conn, err := tls.Dial("tcp", addr.String(), &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) //nolint:gosec // the agent's throwaway certificate
	if err != nil {
		t.Fatalf("TLS handshake with the agent: %v", err)
	}
	_ = conn.Close()
	c := a.contact("softphone", "tls")
	if got, want := c.Address.String(), "sip:softphone@127.0.0.1:"+strconv.Itoa(int(addr.Port()))+";transport=tls"; got != want {
		t.Errorf("Contact %s, want %s", got, want)
	}
}
