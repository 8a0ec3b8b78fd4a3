package softphone

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestFailureCause(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&StatusError{Method: "INVITE", StatusCode: 503, Reason: "Service Unavailable"}, "status 503"},
		{fmt.Errorf("dial: %w", &StatusError{Method: "INVITE", StatusCode: 488}), "status 488"},
		{context.DeadlineExceeded, "timeout"},
		{fmt.Errorf("waiting for the answer: %w", context.DeadlineExceeded), "timeout"},
		{errors.New("connection refused"), "error"},
	}
	for _, tt := range tests {
		if got := FailureCause(tt.err); got != tt.want {
			t.Errorf("FailureCause(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
