/**
 * The async-PF designs (docs/designs.md): the protocol as merged and the alternatives
 * argued over on the mailing lists in 2020, each a host + guest variant selected by one name
 * (`machine.design` in a scenario). Host and guest each implement their half (host/designs,
 * guest/designs); this is the vocabulary they share.
 *
 * - `current`: #PF (flags = 1, CR2 = token) for not-present, an interrupt for page-ready; a failed
 *   fault-in is still "ready", the retry fails and the VMM injects #MC.
 * - `mc`: Andy Lutomirski — deliver the memory failure as #MC: a failed fault-in is reported with an
 *   #MC naming the token (in the token slot), not a page-ready interrupt.
 * - `retry_pf`: Thomas Gleixner — wake, let the task retry, and make the failing retry a real #PF.
 * - `error_flag`: Vivek Goyal's KVM_ASYNC_PF_ERROR — page-ready carries an error flag in the APF data.
 * - `error_code`: Sean Christopherson — "not present" is a #PF with an impossible error code
 *   (0xaaaa) instead of the flags field.
 * - `ve`: Paolo Bonzini — #VE (vector 20) for not-present, an interrupt for page-ready.
 */
export const DESIGN_NAMES = ['current', 'mc', 'retry_pf', 'error_flag', 'error_code', 've'] as const;
export type DesignName = (typeof DESIGN_NAMES)[number];

/** `error_code`: the #PF error code no real fault can have (reserved bits set). */
export const ASYNC_PF_IMPOSSIBLE_ERROR_CODE = 0xaaaa;
/** `error_flag`: bit of the APF `flags` word the host sets with a page-ready whose fault-in failed (model value). */
export const KVM_PV_REASON_PAGE_ERROR = 1 << 3;
/** `ve`: the #VE vector. */
export const VE_VECTOR = 20;
