/**
 * Exact money arithmetic: amounts are integers of minor units (cents), held as bigint; quantities,
 * prices and rates are decimal strings. No binary float ever holds a price.
 *
 * The rounding rule: each line's amount is quantity × unit price rounded half away from zero to
 * the currency's minor unit; the subtotal is the sum of the rounded lines; the tax is subtotal ×
 * rate, rounded the same way; the total is subtotal + tax.
 */

/** ISO 4217 currencies whose minor unit is not a hundredth. */
const EXPONENTS: Record<string, number> = {
  BIF: 0, CLP: 0, DJF: 0, GNF: 0, ISK: 0, JPY: 0, KMF: 0, KRW: 0, PYG: 0, RWF: 0, UGX: 0, UYI: 0, VND: 0, VUV: 0, XAF: 0, XOF: 0, XPF: 0,
  BHD: 3, IQD: 3, JOD: 3, KWD: 3, LYD: 3, OMR: 3, TND: 3,
};

/** Digits after the decimal point in the currency's minor unit (2 for EUR, 0 for JPY, 3 for KWD). */
export const minorDigits = (currency: string): number => EXPONENTS[currency] ?? 2;

/** A decimal as an integer and the power of ten it is divided by: "12.345" is 12345 / 10^3. */
export interface Decimal {
  units: bigint;
  scale: number;
}

const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?$/;

export function parseDecimal(text: string): Decimal {
  const m = DECIMAL.exec(text.trim());
  if (!m) throw new Error(`not a decimal number: "${text}"`);
  const [, sign, whole, fraction = ''] = m;
  const units = BigInt(`${whole}${fraction}`);
  return { units: sign ? -units : units, scale: fraction.length };
}

const TEN = 10n;
const pow10 = (n: number) => TEN ** BigInt(n);

/** n / d rounded half away from zero (d > 0). */
export function divRound(n: bigint, d: bigint): bigint {
  const q = n / d;
  const r = n % d;
  if (2n * (r < 0n ? -r : r) < d) return q;
  return n < 0n ? q - 1n : q + 1n;
}

/** A decimal rounded half away from zero to `digits` decimals, as an integer of 10^-digits units. */
export function toUnits(value: Decimal, digits: number): bigint {
  return value.scale <= digits ? value.units * pow10(digits - value.scale) : divRound(value.units, pow10(value.scale - digits));
}

const multiply = (a: Decimal, b: Decimal): Decimal => ({ units: a.units * b.units, scale: a.scale + b.scale });

/** quantity × unit price, in minor units of the currency, rounded half away from zero. */
export function lineAmount(quantity: string, unitPrice: string, currency: string): bigint {
  return toUnits(multiply(parseDecimal(quantity), parseDecimal(unitPrice)), minorDigits(currency));
}

/** Tax on a subtotal in minor units at a decimal rate ("0.2" for 20 %), rounded half away from zero. */
export function taxAmount(subtotalMinor: bigint, rate: string): bigint {
  return toUnits(multiply({ units: subtotalMinor, scale: 0 }, parseDecimal(rate)), 0);
}

export interface Totals {
  lines: bigint[];
  subtotal: bigint;
  tax: bigint;
  total: bigint;
}

/** An invoice's amounts from its lines' quantities and unit prices, by the rounding rule above. */
export function invoiceTotals(lines: readonly { quantity: string; unitPrice: string }[], currency: string, taxRate: string): Totals {
  const amounts = lines.map((l) => lineAmount(l.quantity, l.unitPrice, currency));
  const subtotal = amounts.reduce((sum, a) => sum + a, 0n);
  const tax = taxAmount(subtotal, taxRate);
  return { lines: amounts, subtotal, tax, total: subtotal + tax };
}

/** A decimal string without trailing zeros: "12.500000" → "12.5", "3.000" → "3". */
function trimDecimal(text: string): string {
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}

/** Groups of three digits: "1234567" → "1,234,567". */
const group = (digits: string) => digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');

/** A decimal for reading: digit groups, trailing zeros dropped ("1234.500000" → "1,234.5"). */
export function formatDecimal(text: string): string {
  const [whole = '0', fraction] = trimDecimal(text).split('.');
  const negative = whole.startsWith('-');
  const body = group(negative ? whole.slice(1) : whole);
  return `${negative ? '-' : ''}${body}${fraction ? `.${fraction}` : ''}`;
}

/** Minor units as an amount with its currency: 123456n, "EUR" → "1,234.56 EUR". */
export function formatMoney(minor: bigint, currency: string): string {
  const digits = minorDigits(currency);
  const negative = minor < 0n;
  const text = (negative ? -minor : minor).toString().padStart(digits + 1, '0');
  const whole = group(text.slice(0, text.length - digits));
  const fraction = digits > 0 ? `.${text.slice(text.length - digits)}` : '';
  return `${negative ? '-' : ''}${whole}${fraction} ${currency}`;
}

/** A price per unit for reading, with at least the currency's minor digits ("0.5" EUR → "0.50"). */
export function formatUnitPrice(text: string, currency: string): string {
  const digits = minorDigits(currency);
  const [whole = '0', fraction = ''] = trimDecimal(text).split('.');
  return `${group(whole)}${digits > 0 || fraction ? `.${fraction.padEnd(digits, '0')}` : ''} ${currency}`;
}

/** A rate as a percentage for reading: "0.2" → "20 %", "0.055" → "5.5 %". */
export function formatPercent(rate: string): string {
  const { units, scale } = parseDecimal(rate);
  if (scale <= 2) return `${units * pow10(2 - scale)} %`;
  const digits = units.toString().padStart(scale - 1, '0');
  const point = digits.length - (scale - 2);
  return `${trimDecimal(`${digits.slice(0, point)}.${digits.slice(point)}`)} %`;
}
