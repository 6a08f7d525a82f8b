// Package txfn runs the functions callers hand to Store.Update and View the
// way every backend must: a panic becomes an error (so the transaction is
// rolled back and the backend survives), whose message is safe to show.
package txfn

import (
	"fmt"
	"runtime/debug"
)

// Call runs fn(tx), turning a panic into a *PanicError.
func Call[T any](fn func(T) error, tx T) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return fn(tx)
}

// PanicError reports a panicking transaction function. The stack is kept
// for debuggers but left out of the message, which may reach a client.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("update function panicked: %v; nothing was written", e.Value)
}

// Unwrap exposes the panic value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}
