;; A counter and note service: the example application of flow 5 (secure fork).
;;
;; It keeps its state between calls, in linear memory and in a global the module
;; does not export (veritee exports it for snapshots when it prepares the module):
;;
;;   count    adds 1 to the counter at address 0 and answers it (8 bytes, little-endian)
;;   remember keeps the call's input (up to 4 KiB) as the note
;;   recall   answers the note
;;   calls    answers how many times `count` ran, from the internal global
;;   role     answers 0 until a fork, then 1 in the parent and 2 in the child
;;   forked   called by veritee on each side of a fork (0 parent, 1 child)
;;   split    asks veritee to fork it at the end of this call; answers what `fork`
;;            said (0 noted, -1 not allowed: started without --fork-peer)
;;
;; A child forked from it answers the same counter and note, then both go their way.
(module
  (import "veritee" "input_read" (func $input_read (param i32 i32 i64 i32 i32) (result i32)))
  (import "veritee" "output_write" (func $output_write (param i32 i32) (result i32)))
  (import "veritee" "fork" (func $fork (result i32)))
  (memory (export "memory") 1)
  (global $counted (mut i64) (i64.const 0))

  (func (export "count") (result i32)
    (i64.store (i32.const 0) (i64.add (i64.load (i32.const 0)) (i64.const 1)))
    (global.set $counted (i64.add (global.get $counted) (i64.const 1)))
    (drop (call $output_write (i32.const 0) (i32.const 8)))
    (i32.const 0))

  ;; The note lives at 4096, its length at 8.
  (func (export "remember") (result i32)
    (i32.store (i32.const 8)
      (call $input_read (i32.const 0) (i32.const 0) (i64.const 0) (i32.const 4096) (i32.const 4096)))
    (i32.const 0))

  (func (export "recall") (result i32)
    (drop (call $output_write (i32.const 4096) (i32.load (i32.const 8))))
    (i32.const 0))

  (func (export "calls") (result i32)
    (i64.store (i32.const 16) (global.get $counted))
    (drop (call $output_write (i32.const 16) (i32.const 8)))
    (i32.const 0))

  ;; The role lives at 24: 0 before any fork, then the side plus one.
  (func (export "forked") (param $role i32)
    (i32.store (i32.const 24) (i32.add (local.get $role) (i32.const 1))))

  (func (export "split") (result i32)
    (i32.store (i32.const 28) (call $fork))
    (drop (call $output_write (i32.const 28) (i32.const 4)))
    (i32.const 0))

  (func (export "role") (result i32)
    (drop (call $output_write (i32.const 24) (i32.const 4)))
    (i32.const 0)))
