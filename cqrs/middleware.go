package cqrs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/backoff"
	"github.com/nova-go/nova/internal/validate"
)

// Logging returns middleware that logs every message handled: its kind,
// Go type, ID (see [Identified]), correlation ID, duration and error. A
// success is logged at Debug level, a failure at Error. A nil logger
// means slog.Default().
func Logging(logger *slog.Logger) Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, msg any) (any, error) {
			l := logger
			if l == nil {
				l = slog.Default()
			}
			start := time.Now()
			res, err := next(ctx, msg)
			attrs := []slog.Attr{
				slog.String("kind", string(KindFrom(ctx))),
				slog.String("type", reflect.TypeOf(msg).String()),
			}
			if id := idOf(msg); id != "" {
				attrs = append(attrs, slog.String("id", id))
			}
			if c := MetadataFrom(ctx).CorrelationID; c != "" {
				attrs = append(attrs, slog.String("correlation_id", c))
			}
			attrs = append(attrs, slog.Duration("duration", time.Since(start)))
			if err != nil {
				attrs = append(attrs, slog.Any("error", err))
				l.LogAttrs(ctx, slog.LevelError, "cqrs: handler failed", attrs...)
			} else {
				l.LogAttrs(ctx, slog.LevelDebug, "cqrs: handled", attrs...)
			}
			return res, err
		}
	}
}

// Validator is a message that can check itself.
type Validator interface {
	Validate() error
}

// Validation returns middleware that calls Validate on every message
// that has it ([Validator]) and rejects an invalid one before its
// handler runs, with an error that matches [nova.ErrInvalid] and wraps
// what Validate returned.
func Validation() Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, msg any) (any, error) {
			if v, ok := msg.(Validator); ok {
				if err := v.Validate(); err != nil {
					return nil, invalidf("invalid %s %T: %w", KindFrom(ctx), msg, err)
				}
			}
			return next(ctx, msg)
		}
	}
}

// Defaults of [RetryConfig].
const (
	DefaultAttempts = 5
	DefaultBase     = 10 * time.Millisecond
	DefaultMax      = time.Second
)

// RetryConfig configures [Retry]. The zero value means defaults.
type RetryConfig struct {
	// Attempts is the most times a handler runs, the first included.
	// Default [DefaultAttempts].
	Attempts int
	// Base is the longest wait before the first retry; each later retry
	// may wait twice as long as the one before, up to Max. Default
	// [DefaultBase].
	Base time.Duration
	// Max caps the wait before a retry. Default [DefaultMax].
	Max time.Duration
}

// validate reports the first bad field; it changes nothing.
func (c RetryConfig) validate() error {
	switch {
	case c.Attempts < 0:
		return validate.InvalidFieldf("cqrs", "RetryConfig.Attempts", "%d, want 0 (default %d) or more", c.Attempts, DefaultAttempts)
	case c.Base < 0:
		return validate.InvalidFieldf("cqrs", "RetryConfig.Base", "%v, want 0 (default %v) or more", c.Base, DefaultBase)
	case c.Max < 0:
		return validate.InvalidFieldf("cqrs", "RetryConfig.Max", "%v, want 0 (default %v) or more", c.Max, DefaultMax)
	}
	return nil
}

// withDefaults returns c with each zero field set to its default.
func (c RetryConfig) withDefaults() RetryConfig {
	if c.Attempts == 0 {
		c.Attempts = DefaultAttempts
	}
	if c.Base == 0 {
		c.Base = DefaultBase
	}
	if c.Max == 0 {
		c.Max = DefaultMax
	}
	return c
}

// Retry returns middleware that runs a handler again when it fails with
// an error matching [nova.ErrConcurrency]: another writer changed the
// aggregate between the handler's load and its save, and running the
// whole handler again (load, decide, save) is the fix. Other errors are
// returned at once.
//
// The wait before retry n is drawn uniformly from [0, min(Max,
// Base·2ⁿ⁻¹)] ("full jitter"), so writers that collided spread out
// instead of colliding again. After Attempts runs the last error is
// returned, wrapped; a ctx done while waiting ends the wait with ctx's
// error, wrapping the last conflict as well.
func Retry(cfg RetryConfig) (Middleware, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := cfg.withDefaults()
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, msg any) (any, error) {
			for attempt := 1; ; attempt++ {
				res, err := next(ctx, msg)
				if err == nil || !errors.Is(err, nova.ErrConcurrency) {
					return res, err
				}
				if attempt >= c.Attempts {
					return nil, fmt.Errorf("cqrs: %s %T still conflicts after %d attempts: %w", KindFrom(ctx), msg, attempt, err)
				}
				if cerr := backoff.Sleep(ctx, backoff.Full(c.Base, c.Max, attempt)); cerr != nil {
					return nil, fmt.Errorf("cqrs: %s %T: retry abandoned after %d attempts: %w", KindFrom(ctx), msg, attempt, errors.Join(cerr, err))
				}
			}
		}
	}, nil
}
