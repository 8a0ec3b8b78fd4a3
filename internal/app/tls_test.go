package app

import (
	"crypto/tls"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/selfsigned"
)

// writeSelfSigned writes a throwaway certificate and key for 127.0.0.1.
func writeSelfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	pair, err := selfsigned.New("groupbridge test", time.Hour, netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pair.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pair.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// The app serves SIP over TLS from sip.listen and sip.tls.
func TestAppServesSIPOverTLS(t *testing.T) {
	t.Parallel()
	cert, key := writeSelfSigned(t)
	y := strings.Replace(testYAML(fmt.Sprintf("  tls: {cert: %s, key: %s}", cert, key), ""),
		`listen: ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]`, `listen: ["udp:127.0.0.1:0", "tls:127.0.0.1:0"]`, 1)
	a, _ := startApp(t, y)
	addr := sipAddr(t, a, "tls")
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) //nolint:gosec // self-signed test certificate
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	src := conn.LocalAddr().String()
	msg := "OPTIONS sip:groupbridge@" + addr + " SIP/2.0\r\nVia: SIP/2.0/TLS " + src + ";branch=z9hG4bKtls1\r\n" +
		"From: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:groupbridge@" + addr + ">\r\nCall-ID: tls1@test\r\nCSeq: 1 OPTIONS\r\n" +
		"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(buf[:n]), "SIP/2.0 200") {
		t.Fatalf("OPTIONS over TLS answered:\n%s", buf[:n])
	}
}
