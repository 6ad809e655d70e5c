@mcl
Feature: Mantle cell lymphoma after brexu-cel or liso-cel failure
  Mantle cell lymphoma that fails CAR-T early is treated as a poor-prognosis failure (failure within three
  months of infusion), in which trials and comfort come forward. Its registry source on salvage therapy
  (DESCAR-T MCL) could not be verified, so other systemic therapy is left to the treating team.

  Rule: Failure within three months of CAR-T carries a poor prognosis in mantle cell lymphoma

    @quality_of_life_focus @clinical_trial @threshold
    Scenario Outline: Relapse on either side of three months
      Given a 69-year-old with mantle cell lymphoma who relapsed <months> months after brexu-cel
      And a suitable clinical trial is available
      When postcart assesses the situation
      Then postcart classes the failure timing as <timing>
      And postcart finds <prognosis> poor prognosis after CAR-T failure
      And a clinical trial is recommended
      And a focus on quality of life is to be considered
      And the reasons include "<reason>"

      Examples:
        | months | timing | prognosis | reason               |
        | 2.9    | early  | a         | alongside treatment  |
        | 3.1    | late   | no        | alongside treatment  |

  Rule: Salvage choices depend on CD20 and on what was used before

    @other_systemic_therapy @bispecific_antibody @long_term_follow_up
    Scenario: Late relapse with CD20 retained
      Given a 71-year-old with mantle cell lymphoma who relapsed 10 months after brexu-cel
      And CD20 is positive on the failure biopsy
      When postcart assesses the situation
      Then other systemic therapy is not addressed
      And a bispecific antibody is to be considered
      And long-term follow-up is recommended
      And the rationale cites Rejeski 2023

    @bispecific_antibody
    Scenario: CD20 lost on the failure biopsy
      Given a 65-year-old with mantle cell lymphoma who relapsed 7 months after liso-cel
      And CD20 is negative on re-biopsy
      When postcart assesses the situation
      Then a bispecific antibody is not advised

    @bispecific_antibody
    Scenario: Relapse after glofitamab had already been given
      Given a 73-year-old with mantle cell lymphoma who relapsed 6 months after brexu-cel
      And he has already received glofitamab
      When postcart assesses the situation
      Then a bispecific antibody is to be considered

    @radiotherapy @allogeneic_hct
    Scenario: Localized relapse in a fit patient with a donor
      Given a 58-year-old with mantle cell lymphoma who relapsed 13 months after brexu-cel
      And the relapse is localized to a single site
      And the HCT-CI is 2
      And organ function is adequate for intensive therapy
      And a haploidentical donor is available
      When postcart assesses the situation
      Then radiotherapy is to be considered
      And allogeneic transplant is to be considered

  Rule: No trial, no trial-only route

    @alternate_target_car_t
    Scenario: CD19-negative relapse when no trial can be reached
      Given a 67-year-old with mantle cell lymphoma who relapsed 9 months after brexu-cel
      And CD19 is lost on re-biopsy
      And a suitable clinical trial cannot be reached
      When postcart assesses the situation
      Then CAR-T against another target is not advised
      And the rationale mentions "only within"

  Rule: TP53-aberrant mantle cell lymphoma brings a trial forward

    @clinical_trial
    Scenario: TP53-mutated MCL progressing after brexu-cel
      Given a 66-year-old with mantle cell lymphoma who relapsed 6 months after brexu-cel
      And there is a TP53 aberration
      And a suitable clinical trial is available
      When postcart assesses the situation
      Then a clinical trial is recommended
      And the reasons include "TP53 mutation"
