package approvals

import (
	"context"
	"fmt"

	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/storage"
)

// TypeAdminBackup records that an admin took a copy of the database (GET
// /v1/backup). It is written before the copy is taken, so the copy holds
// the record of its own making.
const TypeAdminBackup = "admin.backup"

// RecordBackup writes an admin.backup audit record naming by as its actor,
// with data (strings and integers only; never a secret). Call it before
// taking the copy: nobody gets even part of one without a record.
func (s *Service) RecordBackup(ctx context.Context, by audit.Actor, data map[string]any) error {
	err := s.update(ctx, func(tx storage.Tx) error {
		actor := by
		return s.appendAudit(tx, audit.Record{Type: TypeAdminBackup, Actor: &actor, Data: data})
	})
	if err != nil {
		return fmt.Errorf("record backup: %w", err)
	}
	s.log.Info("backup taken by an admin", "admin", by.Subject)
	return nil
}
