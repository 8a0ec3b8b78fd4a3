package selfsigned

import (
	"crypto/tls"
	"crypto/x509"
	"net/netip"
	"testing"
	"time"
)

func TestPairLoadsAndVerifies(t *testing.T) {
	p, err := New("test", time.Hour, netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM); err != nil {
		t.Fatalf("PEM pair does not load: %v", err)
	}
	if _, err := p.Cert.Leaf.Verify(x509.VerifyOptions{Roots: p.Pool, DNSName: "127.0.0.1"}); err != nil {
		t.Fatalf("does not verify for 127.0.0.1 against its pool: %v", err)
	}
	if _, err := p.Cert.Leaf.Verify(x509.VerifyOptions{Roots: p.Pool, DNSName: "127.0.0.2"}); err == nil {
		t.Fatal("verifies for an address it was not made for")
	}
}
